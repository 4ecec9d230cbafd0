//! Errors of the reconcile, each with a static category: the category is the metrics label and
//! the Event reason, so neither ever carries object names or free text.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("AWS {action} failed ({category}): {message}")]
    Aws { action: &'static str, category: AwsCategory, message: String },

    #[error("Kubernetes {action} failed: {source}")]
    Kube {
        action: &'static str,
        #[source]
        source: kube::Error,
    },

    #[error("{action} timed out after {after:?}")]
    Timeout { action: &'static str, after: Duration },

    /// The copy being reconciled is older than the cluster's: nothing was written, and the pass is
    /// repeated once the watch delivers the newer one. Not a failure the user needs to see.
    #[error("{0} changed since this copy was read; reading it again")]
    Stale(String),

    #[error("{0}")]
    Internal(String),
}

/// Broad classes of AWS failures, for retries, metrics and Event reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsCategory {
    Throttled,
    Validation,
    AccessDenied,
    NotFound,
    Transient,
    Other,
}

impl std::fmt::Display for AwsCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AwsCategory::Throttled => "throttled",
            AwsCategory::Validation => "validation",
            AwsCategory::AccessDenied => "access denied",
            AwsCategory::NotFound => "not found",
            AwsCategory::Transient => "transient",
            AwsCategory::Other => "other",
        })
    }
}

impl AwsCategory {
    /// The metrics label of a failed AWS call in this category.
    pub fn label(self) -> &'static str {
        match self {
            AwsCategory::Throttled => "throttled",
            AwsCategory::Validation => "validation",
            AwsCategory::AccessDenied => "access_denied",
            AwsCategory::NotFound => "not_found",
            AwsCategory::Transient => "transient",
            AwsCategory::Other => "error",
        }
    }
}

impl Error {
    /// A static, bounded label: the Event reason and the metrics label of this error.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Aws { category: AwsCategory::Throttled, .. } => "AwsThrottled",
            Error::Aws { category: AwsCategory::Validation, .. } => "AwsValidationError",
            Error::Aws { category: AwsCategory::AccessDenied, .. } => "AwsAccessDenied",
            Error::Aws { category: AwsCategory::NotFound, .. } => "AwsNotFound",
            Error::Aws { category: AwsCategory::Transient, .. } => "AwsUnavailable",
            Error::Aws { category: AwsCategory::Other, .. } => "AwsError",
            Error::Kube { .. } => "KubernetesError",
            Error::Timeout { .. } => "Timeout",
            Error::Stale(_) => "StaleRead",
            Error::Internal(_) => "InternalError",
        }
    }

    pub fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { action, source }
    }
}

impl Error {
    /// `obj` was read before a change the cluster already has: see [`Error::Stale`].
    pub fn stale<K: kube::Resource<DynamicType = ()>>(obj: &K) -> Error {
        Error::Stale(format!("{} {}", K::kind(&()), obj.meta().name.as_deref().unwrap_or_default()))
    }
}

/// A write computed from `obj`, whose precondition (the resourceVersion it was computed from) no
/// longer holds, is a stale copy rather than a failure.
pub fn stale_on_conflict<T, K: kube::Resource<DynamicType = ()>>(written: Result<T>, obj: &K) -> Result<T> {
    match written {
        Err(Error::Kube { source: kube::Error::Api(s), .. }) if s.code == 409 => Err(Error::stale(obj)),
        other => other,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs a Kubernetes call with a deadline.
pub async fn kube_call<T>(
    action: &'static str,
    after: Duration,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T> {
    match tokio::time::timeout(after, call).await {
        Ok(r) => r.map_err(Error::kube(action)),
        Err(_) => Err(Error::Timeout { action, after }),
    }
}
