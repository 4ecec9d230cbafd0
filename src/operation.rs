//! What every day-2 resource (a backup, a failover test) shares: its controller loop, error
//! handling, and one status write per pass with kstatus conditions and an Event on each transition.
//! Each kind keeps only its own steps, in its own module.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::stack::publish::apply_status;
use crate::stack::reconcile::{Object, publish_event};
use crate::stack::status::{self, Health};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use serde::Serialize;
use std::sync::Arc;

/// A day-2 resource kind.
pub trait Operation:
    Object + kube::Resource<Scope = kube::core::NamespaceResourceScope> + Send + Sync + 'static
{
    /// The Event action of its passes, e.g. "Backup".
    const ACTION: &'static str;

    /// One pass over the resource.
    fn pass<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Action>>;
}

/// The status of a day-2 resource: its own fields, and the conditions this module keeps.
pub trait OperationStatus: Serialize + Clone + PartialEq {
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, conditions: Vec<Condition>, generation: Option<i64>);
}

/// Runs the controller for kind `K` until `shutdown` resolves.
pub async fn run<K: Operation>(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<K> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(controller::Config::default().concurrency(ctx.settings.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn error_policy<K>(_obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(crate::stack::reconcile::retry_after(err, &ctx))
}

async fn reconcile<K: Operation>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    let result = match obj.pass(&ctx).await {
        // The watch brings the newer copy; nothing was written from this one.
        Err(Error::Stale(_)) => Ok(Action::requeue(ctx.settings.poll_interval)),
        other => other,
    };
    ctx.metrics.reconciled(started.elapsed(), result.as_ref().err().map(Error::category));
    if let Err(e) = &result {
        tracing::warn!(
            namespace = obj.namespace().unwrap_or_default(),
            name = obj.name_any(),
            kind = K::kind(&()).as_ref(),
            category = e.category(),
            error = %e,
            "pass failed"
        );
        publish_event(&ctx, &*obj, EventType::Warning, e.category(), K::ACTION, e.to_string()).await;
    }
    result
}

/// What one pass decided to report.
pub struct Report<S> {
    pub status: S,
    pub health: Health,
    pub requeue: Action,
    /// A transition worth its own Event: (reason, note). Otherwise a change of reason is announced.
    pub news: Option<(&'static str, String)>,
}

/// Writes the status when it changed (conditions from the health), then the Event of a transition.
pub async fn write<K: Operation, S: OperationStatus>(
    api: &Api<K>,
    obj: &K,
    ctx: &Context,
    prev: &S,
    report: Report<S>,
) -> Result<Action> {
    let Report { mut status, health, requeue, news } = report;
    let generation = obj.meta().generation;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    status.set_conditions(status::conditions(prev.conditions(), &health, generation, &now), generation);
    if status != *prev {
        let value = serde_json::to_value(&status).map_err(|e| Error::Internal(e.to_string()))?;
        apply_status(api, obj, value, ctx.settings.kube_timeout).await?;
    }
    let prev_reason = prev.conditions().iter().find(|c| c.type_ == status::READY).map(|c| c.reason.as_str());
    if let Some((reason, note)) = news {
        let type_ = if health.is_warning() { EventType::Warning } else { EventType::Normal };
        publish_event(ctx, obj, type_, reason, K::ACTION, note).await;
    } else if prev_reason != Some(health.reason()) {
        let type_ = if health.is_warning() { EventType::Warning } else { EventType::Normal };
        publish_event(ctx, obj, type_, health.reason(), K::ACTION, health.message().to_string()).await;
    }
    Ok(requeue)
}

/// A resource that is over (its phase final) records a new generation (a changed deletion policy,
/// say) without doing anything else, so kstatus readers see it current.
pub async fn observe_generation<K: Operation, S: OperationStatus>(
    api: &Api<K>,
    obj: &K,
    ctx: &Context,
    prev: &S,
    observed: Option<i64>,
) -> Result<Action> {
    let generation = obj.meta().generation;
    if observed == generation {
        return Ok(Action::await_change());
    }
    let mut status = prev.clone();
    let conditions = prev
        .conditions()
        .iter()
        .cloned()
        .map(|mut c| {
            c.observed_generation = generation;
            c
        })
        .collect();
    status.set_conditions(conditions, generation);
    let value = serde_json::to_value(&status).map_err(|e| Error::Internal(e.to_string()))?;
    apply_status(api, obj, value, ctx.settings.kube_timeout).await?;
    Ok(Action::await_change())
}

/// While something runs at AWS: the poll interval at first, then a fifth of the time waited, capped.
pub fn backoff(since: Option<&Time>, ctx: &Context) -> Action {
    let s = &ctx.settings;
    let waited = since
        .and_then(|t| k8s_openapi::jiff::Timestamp::now().duration_since(t.0).try_into().ok())
        .unwrap_or(std::time::Duration::ZERO);
    Action::requeue((waited / 5).clamp(s.poll_interval, s.max_poll_interval.max(s.poll_interval)))
}

/// Still working: look again after the poll interval.
pub fn soon(ctx: &Context) -> Action {
    Action::requeue(ctx.settings.poll_interval)
}

pub fn working(reason: &'static str, message: String) -> Health {
    Health::Reconciling { reason, message }
}

pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}
