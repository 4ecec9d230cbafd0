//! The controller loops: one per kind of data stack (its watches, and the reconcile it runs with the
//! shared [`Context`]), and [`run_all`], everything the operator runs for a namespace.

use crate::context::Context;
use crate::stack::DataStack;
use crate::stack::publish::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::stack::reconcile::{error_policy, reconcile};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::ResourceExt;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use std::sync::Arc;

/// Runs the controller for kind `K` until `shutdown` resolves. `namespace` limits the watch to one
/// namespace; `None` watches the whole cluster.
pub async fn run<K: DataStack>(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (resources, secrets): (Api<K>, Api<Secret>) = match &namespace {
        Some(ns) => (Api::namespaced(ctx.client.clone(), ns), Api::namespaced(ctx.client.clone(), ns)),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let managed = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
    // The cache holds every resource; their managed fields (server-side apply bookkeeping, often
    // the larger part of an object) are never read here, so they are not kept.
    let (reader, writer) = reflector::store();
    let watched = watcher(resources, watcher::Config::default().any_semantic())
        .modify(|o: &mut K| o.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects();
    let prompts = stack_changes::<K>(ctx.aws.stack_changes(), reader.clone());
    Controller::for_stream(watched, reader)
        .owns(secrets, watcher::Config::default().labels(&managed))
        .reconcile_on(prompts)
        .with_config(controller::Config::default().concurrency(ctx.settings.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// The resources whose stack a shared sweep just saw change: looked at now, not at their next poll,
/// so a settled stack is published as soon as a sweep shows it.
fn stack_changes<K: DataStack>(
    changes: tokio::sync::broadcast::Receiver<String>,
    store: reflector::Store<K>,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static {
    futures::stream::unfold((changes, store), |(mut changes, store)| async move {
        loop {
            match changes.recv().await {
                Ok(name) => {
                    let owners: Vec<ObjectRef<K>> = store
                        .state()
                        .iter()
                        .filter(|o| o.stack_status().and_then(|s| s.stack_name.as_deref()) == Some(name.as_str()))
                        .map(|o| ObjectRef::from_obj(o.as_ref()))
                        .collect();
                    return Some((futures::stream::iter(owners), (changes, store)));
                }
                // Missed names are looked at on their next poll anyway.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .flatten()
}

/// Every controller the operator runs, for one namespace (`None`: all), until `stop` turns true:
/// OmsRedis and OmsDynamoTable, and the day-2 resources OmsBackup and OmsFailoverTest.
pub async fn run_all(ctx: Arc<Context>, namespace: Option<String>, stop: tokio::sync::watch::Receiver<bool>) {
    let when_stopped = || {
        let mut rx = stop.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };
    futures::join!(
        run::<crate::redis::OmsRedis>(ctx.clone(), namespace.clone(), when_stopped()),
        run::<crate::dynamo::OmsDynamoTable>(ctx.clone(), namespace.clone(), when_stopped()),
        crate::operation::run::<crate::backup::OmsBackup>(ctx.clone(), namespace.clone(), when_stopped()),
        crate::operation::run::<crate::failover::OmsFailoverTest>(ctx, namespace, when_stopped()),
    );
}
