//! Trust on the bed: no path loses data or leaks a stack, every failure says why while the operator
//! works on it, and the user can pause a resource or ask for one more attempt. Each test here
//! reproduces a defect found by using the product, and failed before its fix.

mod support;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use oms_data_operator::redis::OmsRedis;
use serde_json::json;
use std::time::Duration;
use support::controlplane;
use support::emulator::REGION;
use support::operator::{Operator, emulator_sdk_config, test_settings};
use support::world::{WAIT, World, condition, stack};
use support::{eventually, unique_name};

const REQUESTED_AT: &str = "data.oms-spider.io/requested-at";
const PAUSED: &str = "data.oms-spider.io/paused";

/// The snapshots ElastiCache holds of one replication group: (name, status).
async fn snapshots_of(w: &World, group: &str) -> Vec<(String, String)> {
    let out =
        w.emu.elasticache().describe_snapshots().replication_group_id(group).send().await.expect("describe snapshots");
    out.snapshots()
        .iter()
        .map(|s| {
            (s.snapshot_name().unwrap_or_default().to_string(), s.snapshot_status().unwrap_or_default().to_string())
        })
        .collect()
}

async fn annotate(api: &Api<OmsRedis>, name: &str, key: &str, value: Option<&str>) {
    api.patch(name, &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "annotations": { key: value } } })))
        .await
        .expect("annotate");
}

fn ready_message(o: &OmsRedis) -> String {
    condition(o, "Ready").map(|c| c.message.clone()).unwrap_or_default()
}

fn stack_status(o: &OmsRedis) -> String {
    o.status.as_ref().and_then(|s| s.stack.stack_status.clone()).unwrap_or_default()
}

/// Found: a second deletion under policy Snapshot on the same day, or a namesake in another
/// namespace, found the first one's snapshot by name, took none, and deleted its stack anyway.
#[tokio::test]
async fn deletion_policy_snapshot_takes_its_own_snapshot_every_time_before_deleting() {
    let w = World::new("snap-a").await;
    let other_ns = controlplane::test_namespace(&w.client, "snap-b").await;
    let _other = Operator::start(w.cp, w.emu, &other_ns).await;
    let other: Api<OmsRedis> = Api::namespaced(w.client.clone(), &other_ns);
    let stacks: Vec<String> = (0..3).map(|_| unique_name("oms-redis-snapx")).collect();
    // The same metadata.name three times: twice in one namespace on one day, once in another.
    let rounds = [(&w.api, &stacks[0]), (&w.api, &stacks[1]), (&other, &stacks[2])];
    for (api, stack_name) in rounds {
        let manifest = w.manifest("cache", "dev", json!({ "stackName": stack_name, "deletionPolicy": "Snapshot" }));
        api.create(&PostParams::default(), &manifest).await.expect("create");
        eventually("Ready", WAIT, || async {
            let o = api.get("cache").await.ok()?;
            (condition(&o, "Ready")?.status == "True").then_some(())
        })
        .await;
        api.delete("cache", &DeleteParams::default()).await.expect("delete");
        eventually("the resource to go", WAIT, || async {
            matches!(api.get_opt("cache").await, Ok(None)).then_some(())
        })
        .await;
    }
    for stack_name in &stacks {
        assert!(stack(w.emu, stack_name).await.is_none(), "{stack_name} was deleted");
        let snaps = snapshots_of(&w, stack_name).await;
        assert_eq!(snaps.len(), 1, "{stack_name}: exactly one snapshot of its own: {snaps:?}");
        assert_eq!(snaps[0].1, "available", "{stack_name}: {snaps:?}");
        assert_eq!(w.count(stack_name, "elasticache:CreateSnapshot"), 1, "{stack_name}: one CreateSnapshot");
    }
    let names: std::collections::BTreeSet<String> =
        futures::future::join_all(stacks.iter().map(|s| snapshots_of(&w, s)))
            .await
            .into_iter()
            .flatten()
            .map(|s| s.0)
            .collect();
    assert_eq!(names.len(), 3, "three distinct snapshot names: {names:?}");
    for e in w.events("SnapshotCompleted").await {
        let note = e.message.unwrap_or_default();
        assert!(names.iter().any(|n| note.contains(n.as_str())), "the Event names the snapshot: {note}");
    }
}

/// Found: changing spec.region made a second stack in the new region and left the first running,
/// owned by nobody.
#[tokio::test]
async fn a_region_change_is_refused_and_the_resource_keeps_one_stack() {
    let w = World::new("region").await;
    let name = unique_name("oms-redis-region");
    w.create(&name, "dev", json!({ "region": REGION })).await;
    let before = w.ready(&name).await;
    let refused = w
        .api
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "region": "eu-west-1" } })))
        .await
        .expect_err("a region change is refused at apply time");
    assert!(refused.to_string().contains("region is immutable"), "{refused}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = w.ready(&name).await;
    assert_eq!(
        after.status.as_ref().and_then(|s| s.stack.stack_id.clone()),
        before.status.and_then(|s| s.stack.stack_id)
    );
    assert_eq!(w.count(&name, "cloudformation:CreateStack"), 1);
    w.api.delete(&name, &DeleteParams::default()).await.expect("delete");
    w.gone(&name).await;
    assert!(stack(w.emu, &name).await.is_none(), "the one stack is deleted");
}

/// Found: while a failed create was deleted and created again, and while a failing delete was
/// retried, Ready said only "stack … is ROLLBACK_IN_PROGRESS"; the reason was in an Event that
/// expires after an hour. Also: the failure was announced twice (Warning and Normal, same text),
/// and delete messages named the stack's ARN.
#[tokio::test]
async fn the_failure_reason_stays_in_ready_while_the_operator_retries() {
    let w = World::new("why").await;
    let name = unique_name("oms-redis-why");
    let create_reason = "Cache node type cache.t4g.micro is not available in us-east-1a";
    w.emu.configure(json!({ "stack_delays": { name.clone(): 2.0 } }));
    w.emu.fail_next(&name, "create", "RedisReplicationGroup", create_reason);
    w.create(&name, "dev", json!({})).await;
    let mut failed_seen = false;
    let mut missing = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "not Ready after the recreate");
        let o = w.get(&name).await;
        let status = stack_status(&o);
        let ready = condition(&o, "Ready").cloned();
        if status.starts_with("ROLLBACK") || status.starts_with("DELETE") {
            failed_seen = true;
        }
        if let Some(ready) = ready {
            if ready.status == "True" {
                break;
            }
            if failed_seen && !ready.message.contains(create_reason) {
                missing.push(format!("{status}: {}", ready.message));
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(failed_seen, "the failed create was observed");
    assert!(missing.is_empty(), "Ready lost the reason while retrying:\n{}", missing.join("\n"));
    let recreating = w.events("StackRecreating").await;
    assert!(!recreating.is_empty());
    for e in &recreating {
        assert_eq!(e.type_.as_deref(), Some("Warning"), "{:?}", e.message);
    }

    let delete_reason = "Cannot delete replication group while a snapshot is in progress";
    w.emu.fail_next(&name, "delete", "RedisReplicationGroup", delete_reason);
    w.api.delete(&name, &DeleteParams::default()).await.expect("delete");
    let mut delete_failed_seen = false;
    let mut missing = Vec::new();
    let mut arns = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while let Some(o) = w.api.get_opt(&name).await.expect("get") {
        assert!(tokio::time::Instant::now() < deadline, "the resource is not gone");
        let status = stack_status(&o);
        let message = ready_message(&o);
        if message.contains("arn:aws:cloudformation") {
            arns.push(message.clone());
        }
        if status == "DELETE_FAILED" || message.contains(delete_reason) {
            delete_failed_seen = true;
        }
        if delete_failed_seen && !message.contains(delete_reason) {
            missing.push(format!("{status}: {message}"));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(delete_failed_seen, "the failed delete was observed");
    assert!(missing.is_empty(), "Ready lost the reason while retrying the delete:\n{}", missing.join("\n"));
    assert!(arns.is_empty(), "messages name the stack, not its ARN: {arns:?}");
    for reason in ["StackDeleted", "StackDeleteFailed"] {
        for e in w.events(reason).await {
            let note = e.message.unwrap_or_default();
            assert!(!note.contains("arn:aws:cloudformation"), "{reason}: {note}");
        }
    }
}

/// Found: a stack deleted outside the operator was silently replaced by a new, empty one.
#[tokio::test]
async fn a_stack_deleted_outside_the_operator_is_reported_and_a_staging_cache_is_not_recreated_empty() {
    let w = World::new("lost").await;
    let dev = unique_name("oms-redis-lostdev");
    let staging = unique_name("oms-redis-loststg");
    w.create(&dev, "dev", json!({})).await;
    w.create(&staging, "staging", json!({})).await;
    let mut old_ids = std::collections::BTreeMap::new();
    for n in [&dev, &staging] {
        let o = w.ready(n).await;
        old_ids.insert(n.clone(), o.status.and_then(|s| s.stack.stack_id).expect("a stack id"));
    }
    let cfn = w.emu.cloudformation();
    for n in [&dev, &staging] {
        cfn.delete_stack().stack_name(n.as_str()).send().await.expect("delete the stack behind the operator's back");
    }
    // Gone is told by the old stack's id: by name, the dev cache may already have its new stack.
    for n in [&dev, &staging] {
        eventually("the stack to vanish", WAIT, || async {
            let out = cfn.describe_stacks().stack_name(old_ids[n].as_str()).send().await.ok()?;
            let status = out.stacks().first()?.stack_status()?.as_str().to_string();
            (status == "DELETE_COMPLETE").then_some(())
        })
        .await;
    }

    // Staging: loud, and nothing is created until someone asks.
    let o = w.condition_reason(&staging, "Stalled", "True", "StackLost").await;
    let message = ready_message(&o);
    assert!(message.contains(&old_ids[&staging]), "names the lost stack's id: {message}");
    assert!(message.contains("deleted"), "{message}");
    assert!(message.contains(REQUESTED_AT), "says what to do: {message}");
    let table = std::process::Command::new("kubectl")
        .args(["--kubeconfig", &w.cp.kubeconfig.to_string_lossy(), "-n", &w.ns, "get", "omsr", &staging])
        .output()
        .expect("kubectl");
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(table.contains("READY") && table.contains("REASON") && table.contains("StackLost"), "{table}");

    // Dev: a Warning that names what was lost, then a new, empty cache.
    let lost_events = eventually("a StackLost Event for dev", WAIT, || async {
        let evs: Vec<_> = w
            .events("StackLost")
            .await
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(dev.as_str()))
            .collect();
        (!evs.is_empty()).then_some(evs)
    })
    .await;
    assert_eq!(lost_events[0].type_.as_deref(), Some("Warning"));
    assert!(lost_events[0].message.clone().unwrap_or_default().contains(&old_ids[&dev]));
    let o = w.ready(&dev).await;
    assert_ne!(o.status.and_then(|s| s.stack.stack_id).as_ref(), Some(&old_ids[&dev]), "a new stack");
    assert_eq!(w.count(&dev, "cloudformation:CreateStack"), 2);

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.count(&staging, "cloudformation:CreateStack"), 1, "staging was not recreated on its own");
    // Asking once creates a new, empty staging cache.
    annotate(&w.api, &staging, REQUESTED_AT, Some("2026-11-29T10:00:00Z")).await;
    let o = w.ready(&staging).await;
    assert_ne!(o.status.and_then(|s| s.stack.stack_id).as_ref(), Some(&old_ids[&staging]));
    assert_eq!(w.count(&staging, "cloudformation:CreateStack"), 2);
}

/// Found: when AWS could not be reached, Ready, the Event and the log carried the SDK's Debug dump.
#[tokio::test]
async fn unreachable_aws_is_reported_in_plain_words() {
    let cp = controlplane::shared();
    let emu = support::emulator::shared();
    let client = cp.client().await;
    let ns = controlplane::test_namespace(&client, "noaws").await;
    // A loopback port that nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{dead}");
    let config = emulator_sdk_config(emu).into_builder().endpoint_url(&url).build();
    let _operator = Operator::start_with_aws(cp, config, &ns, test_settings()).await;
    let api: Api<OmsRedis> = Api::namespaced(client.clone(), &ns);
    let name = unique_name("oms-redis-noaws");
    let manifest: OmsRedis = serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsRedis",
        "metadata": { "name": name }, "spec": { "environment": "dev", "vpcStackName": "v" },
    }))
    .expect("manifest");
    api.create(&PostParams::default(), &manifest).await.expect("create");
    let o = eventually("the failure in the conditions", WAIT, || async {
        let o = api.get(&name).await.ok()?;
        (condition(&o, "Reconciling")?.reason == "AwsUnavailable").then_some(o)
    })
    .await;
    let message = ready_message(&o);
    for bad in ["DispatchFailure", "ConnectorError", "dispatch failure", "Some(", "{ "] {
        assert!(!message.contains(bad), "{bad:?} in {message}");
    }
    for good in ["CloudFormation", &url, "retr"] {
        assert!(message.contains(good), "{good:?} not in {message}");
    }
}

/// A paused resource is left alone, says so, and picks up where it was when resumed.
#[tokio::test]
async fn a_paused_resource_is_left_alone_until_resumed() {
    let w = World::new("pause").await;
    let name = unique_name("oms-redis-pause");
    let mut manifest = w.manifest(&name, "dev", json!({}));
    manifest.metadata.annotations = Some([(PAUSED.to_string(), "true".to_string())].into());
    w.api.create(&PostParams::default(), &manifest).await.expect("create");
    let o = w.condition_reason(&name, "Paused", "True", "ReconcilePaused").await;
    assert!(condition(&o, "Paused").map(|c| c.message.contains(PAUSED)).unwrap_or(false));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.count(&name, "cloudformation:CreateStack"), 0, "nothing is made while paused");
    annotate(&w.api, &name, PAUSED, None).await;
    let o = w.ready(&name).await;
    assert!(condition(&o, "Paused").is_none_or(|c| c.status == "False"));
}

/// After a rolled-back update, one more attempt with the same spec is asked for with an annotation.
#[tokio::test]
async fn requested_at_retries_a_rolled_back_update_with_the_same_spec() {
    let w = World::new("retry").await;
    let name = unique_name("oms-redis-retry");
    w.create(&name, "staging", json!({})).await;
    w.ready(&name).await;
    w.emu.fail_next(&name, "update", "RedisReplicationGroup", "Insufficient capacity for cache.t4g.medium");
    w.patch_spec(&name, json!({ "nodeType": "cache.t4g.medium" })).await;
    w.condition_reason(&name, "Stalled", "True", "StackUpdateRolledBack").await;
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1);
    annotate(&w.api, &name, REQUESTED_AT, Some("first")).await;
    let o = w.ready(&name).await;
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 2, "exactly one more attempt");
    assert_eq!(o.status.and_then(|s| s.stack.applied_parameters).expect("applied")["NodeType"], "cache.t4g.medium");
    // The same value again is not a new request.
    annotate(&w.api, &name, REQUESTED_AT, Some("first")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 2);
}

/// Policy Snapshot on a group that is busy waits and says so, then takes the snapshot; a group that
/// no longer exists holds no data, so the stack goes without one and a Warning says why.
#[tokio::test]
async fn a_busy_group_is_snapshotted_once_free_and_a_vanished_group_needs_none() {
    let w = World::new("snapbusy").await;
    let busy = unique_name("oms-redis-busy");
    let gone = unique_name("oms-redis-nogroup");
    w.emu.configure(json!({ "failover_delay_seconds": 4.0 }));
    w.create(&busy, "staging", json!({ "deletionPolicy": "Snapshot" })).await;
    w.create(&gone, "dev", json!({ "deletionPolicy": "Snapshot" })).await;
    w.ready(&busy).await;
    w.ready(&gone).await;

    // A failover keeps the group modifying for a few seconds; the delete comes in meanwhile.
    w.emu
        .elasticache()
        .test_failover()
        .replication_group_id(&busy)
        .node_group_id("0001")
        .send()
        .await
        .expect("failover");
    w.api.delete(&busy, &DeleteParams::default()).await.expect("delete");
    let o = w.condition_reason(&busy, "Reconciling", "True", "SnapshotWaiting").await;
    assert!(ready_message(&o).contains("cannot be snapshotted yet"), "{}", ready_message(&o));
    assert!(stack(w.emu, &busy).await.is_some(), "the stack waits for its snapshot");
    w.gone(&busy).await;
    let snaps = snapshots_of(&w, &busy).await;
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0].1, "available");

    w.emu.elasticache().delete_replication_group().replication_group_id(&gone).send().await.expect("delete the group");
    eventually("the group to be gone", WAIT, || async {
        let out = w.emu.elasticache().describe_replication_groups().replication_group_id(&gone).send().await;
        out.is_err().then_some(())
    })
    .await;
    w.api.delete(&gone, &DeleteParams::default()).await.expect("delete");
    let note = w.event_note("SnapshotSkipped").await;
    assert!(note.contains(&gone) && note.contains("no longer exists"), "{note}");
    w.gone(&gone).await;
    assert!(snapshots_of(&w, &gone).await.is_empty());
}

/// The second line of defence: a resource without spec.region is bound to the region its stack
/// was made in. An operator restarted with another default region refuses to follow it (no second
/// stack), says why, and still deletes the stack where it lives.
#[tokio::test]
async fn an_operator_with_another_default_region_never_makes_a_second_stack() {
    let mut w = World::new("region2").await;
    let name = unique_name("oms-redis-home");
    w.create(&name, "dev", json!({})).await;
    let before = w.ready(&name).await;
    let stack_id = before.status.as_ref().and_then(|s| s.stack.stack_id.clone()).expect("a stack id");
    assert!(stack_id.contains(&format!(":{REGION}:")), "{stack_id}");
    if let Some(op) = w.operator.take() {
        op.stop().await;
    }
    let elsewhere = emulator_sdk_config(w.emu).into_builder().region(aws_config::Region::new("eu-west-1")).build();
    let _moved = Operator::start_with_aws(w.cp, elsewhere, &w.ns, test_settings()).await;
    // Any change makes the new operator look; a label is enough.
    w.api
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "labels": { "poke": "1" } } })))
        .await
        .expect("label");
    let o = w.condition_reason(&name, "Stalled", "True", "StackIdentityChanged").await;
    let message = ready_message(&o);
    assert!(message.contains(REGION) && message.contains("eu-west-1"), "{message}");
    let by_key = w.emu.calls(None);
    assert_eq!(w.count(&name, "cloudformation:CreateStack"), 1, "no second stack: {by_key:?}");
    w.api.delete(&name, &DeleteParams::default()).await.expect("delete");
    w.gone(&name).await;
    assert!(stack(w.emu, &name).await.is_none(), "the stack in {REGION} is deleted");
}

/// A reconcile that starts from a copy older than what the operator last wrote (the watch cache lags
/// under load) must neither call AWS nor overwrite newer status: found in CI, where a stale copy
/// without `appliedParameters` sent an UpdateStack for a stack that had just been created.
#[tokio::test]
async fn a_reconcile_of_a_stale_copy_writes_nothing() {
    use oms_data_operator::context::Context;
    use oms_data_operator::metrics::Metrics;
    use oms_data_operator::stack::cfn::Aws;
    use std::sync::Arc;

    let mut w = World::new("stale").await;
    let name = unique_name("oms-redis-stale");
    w.create(&name, "dev", json!({})).await;
    // A copy from mid-create: finalizer and stack id recorded, parameters not yet known to be applied.
    let mid = eventually("the stack id in status", WAIT, || async {
        let o = w.get(&name).await;
        o.status.as_ref()?.stack.stack_id.as_ref()?;
        Some(o)
    })
    .await;
    let ready = w.ready(&name).await;
    let applied = ready.status.as_ref().and_then(|s| s.stack.applied_parameters.clone());
    assert!(applied.is_some());
    assert_eq!(w.writes(&name), 1, "just the create");
    // Only the stale passes below may write from here on.
    w.operator.take().expect("operator").stop().await;
    let ready = w.get(&name).await;
    // Condition times have one-second resolution: a status rewritten from the older copy would now
    // differ from the current one.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let metrics = Arc::new(Metrics::default());
    let aws = Aws::new(emulator_sdk_config(w.emu), Duration::from_secs(20), metrics.clone());
    let ctx = Arc::new(Context::new(w.client.clone(), aws, metrics, test_settings()));
    let mut stale = mid.clone();
    if let Some(s) = stale.status.as_mut() {
        s.stack.applied_parameters = None;
    }
    for copy in [mid, stale] {
        let _ = oms_data_operator::stack::reconcile::reconcile(Arc::new(copy), ctx.clone()).await;
    }
    assert_eq!(w.writes(&name), 1, "a stale copy made AWS calls: {:?}", w.emu.calls(Some(&name)));
    let now = w.get(&name).await;
    assert_eq!(now.status.as_ref().and_then(|s| s.stack.applied_parameters.clone()), applied);
    assert_eq!(condition(&now, "Ready").map(|c| c.status.clone()).as_deref(), Some("True"));
    assert_eq!(
        now.metadata.resource_version, ready.metadata.resource_version,
        "status was rewritten from a stale copy"
    );
}
