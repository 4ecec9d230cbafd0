//! Which AWS account a resource's stack lives in. Platform teams keep dev, staging and prod in
//! separate accounts: a namespace names the IAM role to assume there (annotation
//! `data.oms-spider.io/aws-role-arn`, with `data.oms-spider.io/aws-external-id` where the role's
//! trust policy asks for one), and the operator reaches that account by STS AssumeRole from its
//! own credentials (IRSA's web identity in EKS, through the default chain). Without the annotation,
//! stacks live in the operator's own account.
//!
//! The namespace, not the resource, names the role: whoever may edit a namespace's annotations is a
//! platform administrator, while anyone who may create an OmsRedis could otherwise point it at any
//! account the operator can reach.
//!
//! Assumed credentials are cached until five minutes before they expire. A role that cannot be
//! assumed is an AWS refusal with STS's own words, and the resource stalls on it.

use super::cfn::{Place, aws_error};
use crate::error::{Error, Result, kube_call};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub const ROLE_ARN: &str = "data.oms-spider.io/aws-role-arn";
pub const EXTERNAL_ID: &str = "data.oms-spider.io/aws-external-id";
/// How a session shows in the target account's CloudTrail.
const SESSION_NAME: &str = "oms-data-operator";
/// Credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// A role to assume, as a namespace names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<String>,
}

impl Role {
    /// The account the role is in, from its ARN (`arn:<partition>:iam::<account>:role/<name>`).
    pub fn account(&self) -> Option<&str> {
        account_of_role(&self.arn)
    }
}

fn account_of_role(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, iam, region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let valid = arn_ == "arn"
        && iam == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty());
    valid.then_some(account)
}

/// The account of a stack, from its ARN (`arn:<partition>:cloudformation:<region>:<account>:stack/…`).
pub fn account_of_stack(stack_id: &str) -> Option<String> {
    let account = stack_id.split(':').nth(4)?;
    (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())).then(|| account.to_string())
}

/// The role a namespace's annotations name; an error a person can act on when they are malformed.
pub fn from_annotations(
    annotations: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<Option<Role>, String> {
    let Some(arn) = annotations.get(ROLE_ARN).map(|a| a.trim()).filter(|a| !a.is_empty()) else {
        if annotations.contains_key(EXTERNAL_ID) {
            return Err(format!("the namespace has {EXTERNAL_ID} but no {ROLE_ARN}: name the role to assume"));
        }
        return Ok(None);
    };
    if account_of_role(arn).is_none() {
        return Err(format!(
            "the namespace's {ROLE_ARN} is {arn:?}, not an IAM role ARN: use arn:aws:iam::<12-digit account>:role/<name>"
        ));
    }
    let external_id = annotations.get(EXTERNAL_ID).cloned();
    if let Some(id) = &external_id {
        let ok =
            (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
        if !ok {
            return Err(format!(
                "the namespace's {EXTERNAL_ID} must be 2–1224 characters of letters, digits and _+=,.@:/- (STS's rule)"
            ));
        }
    }
    Ok(Some(Role { arn: arn.to_string(), external_id }))
}

/// The role a resource in `namespace` acts through, read from the namespace (through `seen`); the
/// inner error is malformed annotations, in words for the user (no AWS call was made).
pub async fn role_for(
    client: &kube::Client,
    seen: &Namespaces,
    namespace: &str,
    deadline: Duration,
) -> Result<std::result::Result<Option<Role>, String>> {
    Ok(from_annotations(&seen.annotations(client, namespace, deadline).await?))
}

/// Namespaces' annotations as last read, so the thousand resources of a namespace polling their
/// stacks do not read it a thousand times. A read is reused for [`Namespaces::MAX_AGE`]: an
/// annotation edit takes effect within that.
#[derive(Default)]
pub struct Namespaces {
    read: Mutex<HashMap<String, Read>>,
}

/// When a namespace was read, and its annotations then.
type Read = (std::time::Instant, BTreeMap<String, String>);

impl Namespaces {
    pub const MAX_AGE: Duration = Duration::from_secs(1);

    async fn annotations(
        &self,
        client: &kube::Client,
        namespace: &str,
        deadline: Duration,
    ) -> Result<BTreeMap<String, String>> {
        let fresh = |(at, _): &Read| at.elapsed() < Self::MAX_AGE;
        if let Some((_, a)) = self.read.lock().ok().and_then(|r| r.get(namespace).filter(|e| fresh(e)).cloned()) {
            return Ok(a);
        }
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = kube_call("get namespace", deadline, namespaces.get_metadata(namespace)).await?;
        let annotations = ns.metadata.annotations.unwrap_or_default();
        if let Ok(mut r) = self.read.lock() {
            r.retain(|_, e| fresh(e));
            r.insert(namespace.to_string(), (std::time::Instant::now(), annotations.clone()));
        }
        Ok(annotations)
    }
}

/// Whether the stack recorded in status may be reached through `role`: a stack made in one account is
/// never looked for, or made again, in another. `None` when it may; else why not, for the user.
pub fn account_change(stack_id: Option<&str>, recorded_role: Option<&str>, role: Option<&Role>) -> Option<String> {
    let stack_account = stack_id.and_then(account_of_stack)?;
    let how = |r: Option<&str>| match r {
        Some(arn) => format!("through role {arn}"),
        None => "with the operator's own credentials".to_string(),
    };
    let moved = match role {
        Some(r) => r.account() != Some(stack_account.as_str()),
        // Without a role the operator's own account is not known here; only a stack it made with its
        // own credentials is surely there.
        None => recorded_role.is_some(),
    };
    moved.then(|| {
        format!(
            "this resource's stack lives in AWS account {stack_account}, reached {}, but its namespace now leads {}; \
             nothing was changed. Set the namespace's {ROLE_ARN} back to a role in account {stack_account}, or \
             create a new OmsRedis for a cache in another account",
            how(recorded_role),
            how(role.map(|r| r.arn.as_str()))
        )
    })
}

/// Credentials of an assumed role, renewed shortly before they expire. Clones share the cache.
#[derive(Debug, Clone)]
pub struct AssumedRole {
    role: Role,
    sts: aws_sdk_sts::Client,
    cached: Arc<Mutex<Option<Credentials>>>,
}

impl AssumedRole {
    pub fn new(role: Role, base: &aws_config::SdkConfig) -> AssumedRole {
        AssumedRole { role, sts: aws_sdk_sts::Client::new(base), cached: Arc::new(Mutex::new(None)) }
    }

    fn fresh(&self) -> Option<Credentials> {
        let cached = self.cached.lock().ok()?.clone()?;
        let expiry = cached.expiry()?;
        (expiry > SystemTime::now() + RENEW_BEFORE).then_some(cached)
    }

    /// The role's credentials: cached ones while they last, else STS's. An error says why STS refused.
    pub(crate) async fn credentials(&self, sts: &Place, metrics: &crate::metrics::Metrics) -> Result<Credentials> {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let action = "AssumeRole";
        let answer = self
            .sts
            .assume_role()
            .role_arn(&self.role.arn)
            .role_session_name(SESSION_NAME)
            .set_external_id(self.role.external_id.clone())
            .send()
            .await;
        let outcome = match &answer {
            Ok(_) => "success",
            Err(e) => super::cfn::categorize(e).label(),
        };
        metrics.aws_call("sts", action, outcome);
        let out = answer.map_err(|e| match aws_error(action, sts, e) {
            Error::Aws { category, message, .. } => Error::Aws {
                action,
                category,
                message: format!(
                    "could not assume role {} (named by the namespace's {ROLE_ARN}): {message}. The role's trust \
                     policy must let the operator's own role call sts:AssumeRole{}; see docs/accounts.md",
                    self.role.arn,
                    if self.role.external_id.is_some() { " with this external id" } else { "" }
                ),
            },
            other => other,
        })?;
        let c = out.credentials().ok_or_else(|| {
            Error::Internal(format!("STS answered AssumeRole for {} without credentials", self.role.arn))
        })?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "oms-data-operator-assume-role",
        );
        if let Ok(mut slot) = self.cached.lock() {
            *slot = Some(creds.clone());
        }
        Ok(creds)
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        // The clients ask only after `Aws::clients` has fetched fresh credentials; this is the
        // fallback for a call that outlives them.
        future::ProvideCredentials::new(async move {
            let unexpired = self
                .cached
                .lock()
                .ok()
                .and_then(|c| c.clone())
                .filter(|c| c.expiry().is_none_or(|e| e > SystemTime::now()));
            match unexpired {
                Some(c) => Ok(c),
                None => Err(CredentialsError::provider_error(format!(
                    "the credentials of role {} expired; the next reconcile assumes it again",
                    self.role.arn
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn role(arn: &str) -> Role {
        Role { arn: arn.into(), external_id: None }
    }

    #[test]
    fn role_and_stack_arns_name_their_account() {
        assert_eq!(role("arn:aws:iam::111111111111:role/oms-data").account(), Some("111111111111"));
        assert_eq!(role("arn:aws:iam::111111111111:role/path/oms").account(), Some("111111111111"));
        assert_eq!(role("arn:aws:iam::1111:role/oms").account(), None);
        assert_eq!(role("arn:aws:iam::111111111111:user/oms").account(), None);
        assert_eq!(
            account_of_stack("arn:aws:cloudformation:us-east-1:222222222222:stack/oms-redis-a/uuid").as_deref(),
            Some("222222222222")
        );
        assert_eq!(account_of_stack("oms-redis-a"), None);
    }

    #[test]
    fn namespace_annotations_become_a_role_or_a_plain_refusal() {
        let a = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(from_annotations(&a(&[])), Ok(None));
        let r = from_annotations(&a(&[(ROLE_ARN, "arn:aws:iam::111111111111:role/oms"), (EXTERNAL_ID, "team-a")]));
        assert_eq!(
            r,
            Ok(Some(Role { arn: "arn:aws:iam::111111111111:role/oms".into(), external_id: Some("team-a".into()) }))
        );
        assert!(from_annotations(&a(&[(ROLE_ARN, "oms")])).expect_err("not an ARN").contains("12-digit"));
        assert!(from_annotations(&a(&[(EXTERNAL_ID, "x1")])).expect_err("no role").contains(ROLE_ARN));
        let bad_id = a(&[(ROLE_ARN, "arn:aws:iam::111111111111:role/oms"), (EXTERNAL_ID, "has space")]);
        assert!(from_annotations(&bad_id).is_err());
    }

    #[test]
    fn a_stack_is_never_reached_in_another_account() {
        let stack = Some("arn:aws:cloudformation:us-east-1:111111111111:stack/s/u");
        let same = role("arn:aws:iam::111111111111:role/oms");
        let other = role("arn:aws:iam::222222222222:role/oms");
        assert_eq!(account_change(stack, None, Some(&same)), None, "a role in the stack's account may be added");
        assert_eq!(account_change(stack, Some(&same.arn), Some(&same)), None);
        let moved = account_change(stack, Some(&same.arn), Some(&other)).expect("another account");
        assert!(moved.contains("111111111111") && moved.contains(&other.arn), "{moved}");
        assert!(account_change(stack, Some(&same.arn), None).is_some(), "the role removed");
        assert_eq!(account_change(stack, None, None), None);
        assert_eq!(account_change(None, None, Some(&other)), None, "no stack yet");
    }
}
