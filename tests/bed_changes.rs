//! Safe changes on the bed: a stack changed outside the operator (someone's `update-stack`) is
//! noticed at the next look, reported with what changed, and brought back to the spec.

mod support;

use aws_sdk_cloudformation::types::Parameter;
use oms_data_operator::redis::template::{TEMPLATE_BODY, param};
use serde_json::json;
use std::time::Duration;
use support::operator::{Operator, test_settings};
use support::world::{WAIT, World, stack, stack_params};
use support::{eventually, unique_name};

#[tokio::test]
async fn an_update_stack_made_by_hand_is_reported_and_changed_back_to_the_spec() {
    let mut w = World::new("changes-oob").await;
    // A short resync, so the next look comes soon.
    w.operator.take().expect("operator").stop().await;
    let settings = oms_data_operator::context::Settings { resync: Duration::from_secs(3), ..test_settings() };
    w.operator = Some(Operator::start_with(w.cp, w.emu, &w.ns, settings).await);
    let name = unique_name("oms-redis-oob");
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;

    // Someone scales the node type by hand, keeping every other parameter.
    let cfn = w.emu.cloudformation();
    let params: Vec<Parameter> = param::ALL
        .iter()
        .map(|k| match *k {
            param::NODE_TYPE => Parameter::builder().parameter_key(*k).parameter_value("cache.t4g.small").build(),
            _ => Parameter::builder().parameter_key(*k).use_previous_value(true).build(),
        })
        .collect();
    cfn.update_stack()
        .stack_name(&name)
        .template_body(TEMPLATE_BODY)
        .set_parameters(Some(params))
        .send()
        .await
        .expect("an update-stack by hand");

    let note = w.event_note("StackChangedOutside").await;
    assert!(
        note.contains("NodeType is cache.t4g.small, the spec says cache.t4g.micro")
            && note.contains("changing it back"),
        "{note}"
    );
    eventually("the stack back at the spec's node type", WAIT, || async {
        let s = stack(w.emu, &name).await?;
        let settled = s.stack_status().is_some_and(|st| st.as_str() == "UPDATE_COMPLETE");
        (settled && stack_params(&s).get(param::NODE_TYPE).map(String::as_str) == Some("cache.t4g.micro")).then_some(())
    })
    .await;
    w.ready(&name).await;
    assert_eq!(w.count(&name, "cloudformation:UpdateStack"), 2, "the hand-made update and one update back");
    // Once back, later looks change nothing.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(w.count(&name, "cloudformation:UpdateStack"), 2, "no more updates once it matches the spec");
}

/// A dev cache whose next update fails, and whose rollback fails `rollback_failures` times.
async fn update_that_fails_to_roll_back(w: &World, prefix: &str, rollback_failures: u32) -> String {
    let name = unique_name(prefix);
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;
    w.emu.fail_next(&name, "update", "RedisReplicationGroup", "Cannot modify the replication group: quota reached");
    w.emu.control(
        "POST",
        "/_oms/fail",
        Some(json!({
            "stack_name": name, "operation": "update_rollback", "resource": "RedisReplicationGroup",
            "reason": "Subnet group is in use by another group", "times": rollback_failures,
        })),
    );
    w.patch_spec(&name, json!({ "numCacheNodes": 2 })).await;
    name
}

fn ready_message(o: &oms_data_operator::redis::OmsRedis) -> String {
    support::world::condition(o, "Ready").map(|c| c.message.clone()).unwrap_or_default()
}

#[tokio::test]
async fn a_failed_rollback_is_continued_once_and_settles_rolled_back() {
    let w = World::new("changes-urf").await;
    let name = update_that_fails_to_roll_back(&w, "oms-redis-urf", 1).await;
    let note = w.event_note("StackRollbackFailed").await;
    assert!(
        note.contains("Subnet group is in use by another group") && note.contains("Continuing the rollback"),
        "{note}"
    );
    let o = w.condition_reason(&name, "Stalled", "True", "StackUpdateRolledBack").await;
    assert!(ready_message(&o).contains("quota reached"), "says why the update failed: {}", ready_message(&o));
    let s = stack(w.emu, &name).await.expect("the stack");
    assert_eq!(s.stack_status().map(|s| s.as_str()), Some("UPDATE_ROLLBACK_COMPLETE"));
    assert_eq!(w.count(&name, "cloudformation:ContinueUpdateRollback"), 1);
    assert!(w.secret(&format!("{name}-redis")).await.is_some(), "the previous configuration stays published");
}

#[tokio::test]
async fn a_rollback_that_fails_again_stalls_with_its_reason_and_the_manual_step_and_continues_when_asked() {
    let w = World::new("changes-urf2").await;
    let name = update_that_fails_to_roll_back(&w, "oms-redis-urf2", 2).await;
    let o = w.condition_reason(&name, "Stalled", "True", "StackRollbackFailed").await;
    let message = ready_message(&o);
    assert!(message.contains("Subnet group is in use by another group"), "the failing resource's reason: {message}");
    assert!(message.contains("continue-update-rollback") && message.contains(REQUESTED_AT), "what to do: {message}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.count(&name, "cloudformation:ContinueUpdateRollback"), 1, "continued once by itself, then waits");

    // Someone fixed the cause and asks for one more attempt.
    w.api
        .patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({ "metadata": { "annotations": { REQUESTED_AT: "fixed-1" } } })),
        )
        .await
        .expect("annotate");
    w.condition_reason(&name, "Stalled", "True", "StackUpdateRolledBack").await;
    assert_eq!(w.count(&name, "cloudformation:ContinueUpdateRollback"), 2);
}

const REQUESTED_AT: &str = "data.oms-spider.io/requested-at";

#[tokio::test]
async fn scheduled_drift_detection_reports_a_resource_changed_outside_cloudformation() {
    let w = World::new("changes-drift").await;
    let name = unique_name("oms-redis-drift");
    w.create(&name, "dev", json!({ "driftDetection": { "intervalMinutes": 1 } })).await;
    w.ready(&name).await;
    let o = w.condition_reason(&name, "Drifted", "False", "InSync").await;
    assert_eq!(support::world::condition(&o, "Ready").map(|c| c.status.as_str()), Some("True"));

    // Someone changes the node type in the console; the next detection (a minute later) sees it.
    w.emu.drift(&name, "RedisReplicationGroup", "CacheNodeType", json!("cache.t4g.small"));
    let o = eventually("the drift to be reported", Duration::from_secs(150), || async {
        let o = w.api.get(&name).await.ok()?;
        let c = support::world::condition(&o, "Drifted")?;
        (c.status == "True").then_some(o)
    })
    .await;
    let c = support::world::condition(&o, "Drifted").expect("Drifted");
    assert_eq!(c.reason, "ResourcesDrifted");
    assert!(
        c.message
            .contains("RedisReplicationGroup: CacheNodeType is cache.t4g.small in AWS, the stack says cache.t4g.micro")
            && c.message.contains("does not correct resource drift"),
        "{}",
        c.message
    );
    assert_eq!(
        support::world::condition(&o, "Ready").map(|c| c.status.as_str()),
        Some("True"),
        "drift is reported, not a failure"
    );
    assert!(w.event_note("ResourcesDrifted").await.contains("CacheNodeType"));
    assert!(w.count(&name, "cloudformation:DetectStackDrift") >= 2);
}
