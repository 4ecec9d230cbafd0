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
    in_flight: Gauge,
    queue_depth: Gauge,
    scheduled: Mutex<HashMap<String, ()>>,
    leader: Gauge,
    budget_rate: Gauge<f64, std::sync::atomic::AtomicU64>,
    budget_wait: Counter<f64, std::sync::atomic::AtomicU64>,
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
        let in_flight = Gauge::default();
        let queue_depth = Gauge::default();
        let leader = Gauge::default();
        registry.register("reconciles_in_flight", "Reconciles running now", in_flight.clone());
        registry.register(
            "queue_depth",
            "Resources waiting for their next reconcile (a scheduled requeue) or in one",
            queue_depth.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease (or runs without election)",
            leader.clone(),
        );
        let budget_rate = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let budget_wait = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "aws_budget_rate",
            "AWS calls a second the call budget allows now (halved by Throttling, restored by successes)",
            budget_rate.clone(),
        );
        registry.register("aws_budget_wait_seconds", "Time AWS calls waited for the call budget", budget_wait.clone());
        Metrics {
            budget_rate,
            budget_wait,
            registry,
            reconciles,
            errors,
            duration,
            aws_calls,
            stacks,
            phases: Mutex::new(HashMap::new()),
            in_flight,
            queue_depth,
            scheduled: Mutex::new(HashMap::new()),
            leader,
        }
    }
}

/// `namespace/name`: how the metrics keep track of one resource (never exported as a label).
pub fn object_key<K: kube::Resource>(obj: &K) -> String {
    format!("{}/{}", obj.meta().namespace.as_deref().unwrap_or(""), obj.meta().name.as_deref().unwrap_or(""))
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

    /// The call budget's rate now, and a wait for it.
    pub fn aws_budget(&self, rate: f64, waited: std::time::Duration) {
        self.budget_rate.set(if rate.is_finite() { rate } else { -1.0 });
        if !waited.is_zero() {
            self.budget_wait.inc_by(waited.as_secs_f64());
        }
    }

    pub fn aws_call(&self, service: &'static str, action: &'static str, outcome: &'static str) {
        self.aws_calls.get_or_create(&AwsCallLabels { service, action, outcome }).inc();
    }

    /// Records the phase of one resource's stack (`None` forgets the resource).
    pub fn observe_phase<K: kube::Resource>(&self, obj: &K, stack_status: Option<&str>) {
        let key = object_key(obj);
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
        let key = object_key(obj);
        let Ok(mut phases) = self.phases.lock() else {
            return;
        };
        if let Some(old) = phases.remove(&key) {
            self.stacks.get_or_create(&PhaseLabels { phase: old }).dec();
        }
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A reconcile of `key` starts: it is no longer waiting in the queue.
    pub fn reconcile_started(&self, key: &str) {
        self.in_flight.inc();
        if let Ok(mut s) = self.scheduled.lock() {
            s.remove(key);
            self.queue_depth.set(s.len() as i64 + self.in_flight.get());
        }
    }

    /// A reconcile of `key` ended; `requeued` when it asked to be looked at again later.
    pub fn reconcile_finished(&self, key: &str, requeued: bool) {
        self.in_flight.dec();
        if let Ok(mut s) = self.scheduled.lock() {
            if requeued {
                s.insert(key.to_string(), ());
            }
            self.queue_depth.set(s.len() as i64 + self.in_flight.get());
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
