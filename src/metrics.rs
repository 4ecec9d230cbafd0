//! Prometheus metrics. Every label is static and bounded (outcomes, error categories, AWS
//! actions, stack phases): never an object name or an error string.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    pub service: &'static str,
    pub action: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: &'static str,
}

pub struct Metrics {
    pub registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<OutcomeLabels, Histogram>,
    aws_calls: Family<AwsCallLabels, Counter>,
    stacks: Family<PhaseLabels, Gauge>,
    phases: Mutex<HashMap<String, &'static str>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("oms_data_operator");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
        });
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        let stacks = Family::<PhaseLabels, Gauge>::default();
        registry.register("reconcile", "Reconciles by outcome", reconciles.clone());
        registry.register("reconcile_errors", "Failed reconciles by error category", errors.clone());
        registry.register("reconcile_duration_seconds", "Reconcile duration by outcome", duration.clone());
        registry.register("aws_calls", "AWS API calls by service, action and outcome", aws_calls.clone());
        registry.register("stacks", "Managed stacks by phase", stacks.clone());
        Metrics { registry, reconciles, errors, duration, aws_calls, stacks, phases: Mutex::new(HashMap::new()) }
    }
}

/// A stack status folded into a few phases, so the gauge stays small.
pub fn phase_label(stack_status: Option<&str>) -> &'static str {
    match stack_status {
        None => "none",
        Some(s) if s.ends_with("_IN_PROGRESS") => "in_progress",
        Some("CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE") => "complete",
        Some("UPDATE_ROLLBACK_COMPLETE" | "ROLLBACK_COMPLETE") => "rolled_back",
        Some("DELETE_COMPLETE") => "deleted",
        Some(_) => "failed",
    }
}

impl Metrics {
    pub fn reconciled(&self, took: Duration, error_category: Option<&'static str>) {
        let outcome = if error_category.is_some() { "error" } else { "success" };
        self.reconciles.get_or_create(&OutcomeLabels { outcome }).inc();
        self.duration.get_or_create(&OutcomeLabels { outcome }).observe(took.as_secs_f64());
        if let Some(category) = error_category {
            self.errors.get_or_create(&ErrorLabels { category }).inc();
        }
    }

    pub fn aws_call(&self, service: &'static str, action: &'static str, outcome: &'static str) {
        self.aws_calls.get_or_create(&AwsCallLabels { service, action, outcome }).inc();
    }

    /// Records the phase of one resource's stack (`None` forgets the resource).
    pub fn observe_phase<K: kube::Resource>(&self, obj: &K, stack_status: Option<&str>) {
        let key =
            format!("{}/{}", obj.meta().namespace.as_deref().unwrap_or(""), obj.meta().name.as_deref().unwrap_or(""));
        let Ok(mut phases) = self.phases.lock() else {
            return;
        };
        let new = phase_label(stack_status);
        if let Some(old) = phases.insert(key, new) {
            self.stacks.get_or_create(&PhaseLabels { phase: old }).dec();
        }
        self.stacks.get_or_create(&PhaseLabels { phase: new }).inc();
    }

    pub fn forget<K: kube::Resource>(&self, obj: &K) {
        let key =
            format!("{}/{}", obj.meta().namespace.as_deref().unwrap_or(""), obj.meta().name.as_deref().unwrap_or(""));
        let Ok(mut phases) = self.phases.lock() else {
            return;
        };
        if let Some(old) = phases.remove(&key) {
            self.stacks.get_or_create(&PhaseLabels { phase: old }).dec();
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
