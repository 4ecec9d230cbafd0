//! Safe changes on the bed: a stack changed outside the operator (someone's `update-stack`) is
//! noticed at the next look, reported with what changed, and brought back to the spec. Every update
//! is previewed with a change set: its plan is shown, a replacement of the data is refused unless
//! allowed, and a kill at any step leaves no stray change set and exactly one update.

mod support;

use aws_sdk_cloudformation::types::Parameter;
use oms_data_operator::redis::OmsRedis;
use oms_data_operator::redis::template::{TEMPLATE_BODY, param};
use serde_json::json;
use std::time::Duration;
use support::operator::{Operator, OperatorProcess, test_settings};
use support::world::{WAIT, World, stack, stack_params};
use support::{eventually, unique_name};

/// Someone's `update-stack` that changes the node type and keeps every other parameter.
async fn set_node_type_by_hand(w: &World, name: &str, node_type: &str) {
    let params: Vec<Parameter> = param::ALL
        .iter()
        .map(|k| match *k {
            param::NODE_TYPE => Parameter::builder().parameter_key(*k).parameter_value(node_type).build(),
            _ => Parameter::builder().parameter_key(*k).use_previous_value(true).build(),
        })
        .collect();
    w.emu
        .cloudformation()
        .update_stack()
        .stack_name(name)
        .template_body(TEMPLATE_BODY)
        .set_parameters(Some(params))
        .send()
        .await
        .expect("an update-stack by hand");
}

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
    set_node_type_by_hand(&w, &name, "cache.t4g.small").await;

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
    assert_eq!(w.count(&name, "cloudformation:UpdateStack"), 1, "the hand-made update");
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1, "one update back");
    // Once back, later looks change nothing.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1, "no more updates once it matches the spec");
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

/// The operator's change sets on the stack: (name, status, execution status).
async fn change_sets(w: &World, stack: &str) -> Vec<(String, String, String)> {
    let out = w.emu.cloudformation().list_change_sets().stack_name(stack).send().await.expect("list change sets");
    out.summaries()
        .iter()
        .map(|s| {
            (
                s.change_set_name().unwrap_or_default().to_string(),
                s.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                s.execution_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

/// Change sets that never ran: none may be left once the resource is Ready.
fn unexecuted(sets: &[(String, String, String)]) -> Vec<&(String, String, String)> {
    sets.iter().filter(|(_, _, e)| !e.starts_with("EXECUTE_")).collect()
}

/// Updates CloudFormation started on the stack (stack-level UPDATE_IN_PROGRESS events).
async fn updates_started(w: &World, stack: &str) -> usize {
    let out = w.emu.cloudformation().describe_stack_events().stack_name(stack).send().await.expect("events");
    out.stack_events()
        .iter()
        .filter(|e| {
            e.resource_type() == Some("AWS::CloudFormation::Stack")
                && e.resource_status().map(|s| s.as_str()) == Some("UPDATE_IN_PROGRESS")
        })
        .count()
}

#[tokio::test]
async fn an_in_place_change_is_previewed_shows_its_plan_and_goes_through() {
    let w = World::new("changes-plan").await;
    let name = unique_name("oms-redis-plan");
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;
    assert_eq!(w.count(&name, "cloudformation:CreateChangeSet"), 0, "a create needs no preview");

    w.patch_spec(&name, json!({ "nodeType": "cache.t4g.small" })).await;
    let o = w.ready(&name).await;
    let plan = o.status.as_ref().and_then(|s| s.stack.plan.clone()).expect("status.plan");
    assert_eq!(plan.state, "Applied");
    let rg = plan.changes.iter().find(|c| c.resource == "RedisReplicationGroup").expect("the group in the plan");
    assert_eq!((rg.action.as_str(), rg.replacement.as_deref()), ("Modify", Some("False")), "{rg:?}");
    assert_eq!(rg.scope, vec!["Properties".to_string()]);
    assert!(rg.causes.contains(&"CacheNodeType (parameter NodeType)".to_string()), "{:?}", rg.causes);
    let s = stack(w.emu, &name).await.expect("stack");
    assert_eq!(stack_params(&s).get(param::NODE_TYPE).map(String::as_str), Some("cache.t4g.small"));
    for (action, n) in [("CreateChangeSet", 1), ("ExecuteChangeSet", 1), ("UpdateStack", 0)] {
        assert_eq!(w.count(&name, &format!("cloudformation:{action}")), n, "{action}");
    }
    assert!(w.event_note("StackUpdating").await.contains("RedisReplicationGroup Modify"), "the Event names the plan");
    let sets = change_sets(&w, &name).await;
    assert!(unexecuted(&sets).is_empty() && sets.len() <= 1, "{sets:?}");
    // A spec edit that changes no parameter costs no preview.
    w.patch_spec(&name, json!({ "deletionPolicy": "Delete" })).await;
    w.ready(&name).await;
    assert_eq!(w.count(&name, "cloudformation:CreateChangeSet"), 1);
}

#[tokio::test]
async fn a_change_that_replaces_the_data_is_refused_and_goes_ahead_only_when_allowed() {
    let w = World::new("changes-replace").await;
    let name = unique_name("oms-redis-replace");
    // A staging stack made by hand; adopting it as prod would turn on encryption, which ElastiCache
    // can only do on a new replication group.
    let params: Vec<Parameter> = support::world::seed("staging", &w.vpc)
        .into_iter()
        .map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build())
        .collect();
    w.emu
        .cloudformation()
        .create_stack()
        .stack_name(&name)
        .template_body(TEMPLATE_BODY)
        .set_parameters(Some(params))
        .send()
        .await
        .expect("a stack made by hand");
    eventually("the hand-made stack", WAIT, || async {
        let s = stack(w.emu, &name).await?;
        (s.stack_status().map(|s| s.as_str()) == Some("CREATE_COMPLETE")).then_some(())
    })
    .await;
    w.create(&name, "prod", json!({ "adoptExistingStack": true })).await;
    let o = w.condition_reason(&name, "Stalled", "True", "StackChangeReplacesData").await;
    let message = ready_message(&o);
    for says in [
        "replace RedisReplicationGroup (AWS::ElastiCache::ReplicationGroup)",
        "TransitEncryptionEnabled (parameter Environment)",
        "Nothing was executed",
        "spec.allowReplacement: true",
        "UpdateReplacePolicy is Snapshot",
    ] {
        assert!(message.contains(says), "{says:?} not in: {message}");
    }
    let plan = o.status.as_ref().and_then(|s| s.stack.plan.clone()).expect("status.plan");
    assert_eq!(plan.state, "Refused");
    let rg = plan.changes.iter().find(|c| c.resource == "RedisReplicationGroup").expect("the group in the plan");
    assert_eq!(rg.replacement.as_deref(), Some("True"));
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.count(&name, "cloudformation:CreateChangeSet"), 1, "one preview, kept for review");
    assert_eq!(unexecuted(&change_sets(&w, &name).await).len(), 1);

    // Allowed: the change set that was shown is the one executed. CloudFormation then refuses to
    // replace a group with a fixed name, and the cache stays as it was.
    w.patch_spec(&name, json!({ "allowReplacement": true })).await;
    let o = w.condition_reason(&name, "Stalled", "True", "StackUpdateRolledBack").await;
    assert!(ready_message(&o).contains("custom-named resource requires replacing"), "{}", ready_message(&o));
    assert_eq!(w.count(&name, "cloudformation:CreateChangeSet"), 1, "the shown change set was executed");
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1, "a failed update is not sent again by itself");
    let s = stack(w.emu, &name).await.expect("stack");
    assert_eq!(stack_params(&s).get("Environment").map(String::as_str), Some("staging"), "rolled back");
}

#[tokio::test]
async fn an_operator_killed_at_each_change_set_step_leaves_no_stray_change_set_and_makes_one_update() {
    let w = World::new("changes-kill").await;
    let name = unique_name("oms-redis-cskill");
    w.emu.configure(json!({ "stack_delays": { name.clone(): 1.0 } }));
    let ns = support::controlplane::test_namespace(&w.client, "cskill-bin").await;
    let api: kube::Api<OmsRedis> = kube::Api::namespaced(w.client.clone(), &ns);
    let spawn = |access_key: &str| OperatorProcess::watching(w.emu, &w.cp.kubeconfig, &ns, access_key, &[]);
    let ready = |generation: i64| {
        let api = api.clone();
        let name = name.clone();
        async move {
            eventually("Ready at the new generation", WAIT, || async {
                let o = api.get(&name).await.ok()?;
                let c = support::world::condition(&o, "Ready")?;
                (c.status == "True" && c.observed_generation == Some(generation)).then_some(o)
            })
            .await
        }
    };
    let mut operator = spawn("cskill-0");
    let mut manifest = w.manifest(&name, "dev", json!({}));
    manifest.metadata.namespace = Some(ns.clone());
    api.create(&kube::api::PostParams::default(), &manifest).await.expect("create");
    ready(1).await;

    // Each step: arm a lost reply, change the node type, kill the operator while it waits for the
    // reply, start a new one. `after_create` arms the hold only once the change set exists.
    let steps = [
        ("ListChangeSets", "cache.t4g.small", false),
        ("CreateChangeSet", "cache.t4g.medium", false),
        ("DescribeChangeSet", "cache.t4g.small", true),
        ("ExecuteChangeSet", "cache.t4g.micro", false),
    ];
    for (i, (action, node_type, after_create)) in steps.into_iter().enumerate() {
        let key = format!("cloudformation:{action}");
        let (executed, updates) = (w.count(&name, "cloudformation:ExecuteChangeSet"), updates_started(&w, &name).await);
        let creates = w.count(&name, "cloudformation:CreateChangeSet");
        if !after_create {
            w.emu.hold(action, &name, 1, 60.0);
        }
        let seen = w.count(&name, &key);
        api.patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({ "spec": { "nodeType": node_type } })),
        )
        .await
        .expect("patch");
        if after_create {
            eventually("the change set to be made", WAIT, || async {
                (w.count(&name, "cloudformation:CreateChangeSet") > creates).then_some(())
            })
            .await;
            w.emu.hold(action, &name, 1, 60.0);
        }
        let seen = if after_create { w.count(&name, &key) } else { seen };
        eventually(&format!("the operator to call {action}"), WAIT, || async {
            (w.count(&name, &key) > seen).then_some(())
        })
        .await;
        operator.child.kill().expect("kill -9 the operator");
        let _ = operator.child.wait();
        w.emu.hold(action, &name, 0, 0.0);
        operator = spawn(&format!("cskill-{}", i + 1));
        let o = ready(i as i64 + 2).await;
        let applied = o.status.and_then(|s| s.stack.applied_parameters).expect("applied");
        assert_eq!(applied.get(param::NODE_TYPE).map(String::as_str), Some(node_type), "step {i} ({action})");
        let s = stack(w.emu, &name).await.expect("stack");
        assert_eq!(stack_params(&s).get(param::NODE_TYPE).map(String::as_str), Some(node_type), "step {i}");
        assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), executed + 1, "step {i} ({action}): one execute");
        assert_eq!(updates_started(&w, &name).await, updates + 1, "step {i} ({action}): exactly one update");
        let sets = change_sets(&w, &name).await;
        assert!(unexecuted(&sets).is_empty() && sets.len() <= 1, "step {i} ({action}): {sets:?}");
    }
    drop(operator);
}

#[tokio::test]
async fn an_update_stack_by_hand_with_another_template_and_tags_is_named_and_changed_back() {
    let mut w = World::new("changes-tpl").await;
    w.operator.take().expect("operator").stop().await;
    let settings = oms_data_operator::context::Settings { resync: Duration::from_secs(3), ..test_settings() };
    w.operator = Some(Operator::start_with(w.cp, w.emu, &w.ns, settings).await);
    let name = unique_name("oms-redis-tpl");
    w.create(&name, "dev", json!({ "tags": { "team": "payments" } })).await;
    w.ready(&name).await;
    let reads = w.count(&name, "cloudformation:GetTemplate");

    // Someone updates the stack with an edited template and another team tag, same parameters.
    let mut template: serde_json::Value = serde_json::from_str(TEMPLATE_BODY).expect("template");
    template["Resources"]["RedisCPUAlarm"]["Properties"]["AlarmDescription"] = json!("edited by hand");
    let cfn = w.emu.cloudformation();
    let s = stack(w.emu, &name).await.expect("stack");
    let tags: Vec<aws_sdk_cloudformation::types::Tag> = s
        .tags()
        .iter()
        .map(|t| {
            let value = if t.key() == Some("team") { "other" } else { t.value().unwrap_or_default() };
            aws_sdk_cloudformation::types::Tag::builder().key(t.key().unwrap_or_default()).value(value).build()
        })
        .collect();
    let params: Vec<Parameter> =
        param::ALL.iter().map(|k| Parameter::builder().parameter_key(*k).use_previous_value(true).build()).collect();
    cfn.update_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .set_parameters(Some(params))
        .set_tags(Some(tags))
        .send()
        .await
        .expect("an update-stack by hand");

    let note = w.event_note("StackChangedOutside").await;
    assert!(
        note.contains("the template is not the operator's")
            && note.contains("tag team is other, the spec says payments"),
        "{note}"
    );
    eventually("the operator's tags back", WAIT, || async {
        let s = stack(w.emu, &name).await?;
        let settled = s.stack_status().is_some_and(|st| st.as_str() == "UPDATE_COMPLETE");
        let team = s.tags().iter().find(|t| t.key() == Some("team")).and_then(|t| t.value()).map(String::from);
        (settled && team.as_deref() == Some("payments")).then_some(())
    })
    .await;
    w.ready(&name).await;
    // Settled again, later looks read no template: the stack has not been updated since.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(w.count(&name, "cloudformation:GetTemplate") - reads, 1, "one template read for one outside update");
    let body = cfn.get_template().stack_name(&name).send().await.expect("GetTemplate");
    let running: serde_json::Value = serde_json::from_str(body.template_body().unwrap_or_default()).expect("JSON");
    assert_eq!(running, serde_json::from_str::<serde_json::Value>(TEMPLATE_BODY).expect("ours"), "the template back");
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1, "one update back");
}

#[tokio::test]
async fn a_failed_update_made_by_hand_is_reported_and_the_cache_stays_ready() {
    let w = World::new("changes-oobfail").await;
    let name = unique_name("oms-redis-oobfail");
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;
    w.emu.fail_next(&name, "update", "RedisReplicationGroup", "Insufficient capacity for cache.t4g.small");
    set_node_type_by_hand(&w, &name, "cache.t4g.small").await;
    let note = w.event_note("StackChangedOutside").await;
    assert!(
        note.contains("made outside the operator failed and was rolled back")
            && note.contains("Insufficient capacity for cache.t4g.small"),
        "{note}"
    );
    let o = w.ready(&name).await;
    assert!(ready_message(&o).contains("UPDATE_ROLLBACK_COMPLETE"), "{}", ready_message(&o));
    assert_eq!(w.count(&name, "cloudformation:CreateChangeSet"), 0, "nothing to change back");
}

#[tokio::test]
async fn a_retained_stack_keeps_no_preview_of_an_update_that_never_ran() {
    let w = World::new("changes-retain").await;
    let name = unique_name("oms-redis-csretain");
    w.create(&name, "dev", json!({ "deletionPolicy": "Retain" })).await;
    w.ready(&name).await;
    w.patch_spec(&name, json!({ "nodeType": "cache.t4g.small" })).await;
    eventually("the preview to be made", WAIT, || async {
        (w.count(&name, "cloudformation:CreateChangeSet") >= 1).then_some(())
    })
    .await;
    w.api.delete(&name, &kube::api::DeleteParams::default()).await.expect("delete");
    eventually("the resource to go", WAIT, || async { matches!(w.api.get_opt(&name).await, Ok(None)).then_some(()) })
        .await;
    let sets = change_sets(&w, &name).await;
    assert!(unexecuted(&sets).is_empty(), "left on the retained stack: {sets:?}");
    let s = stack(w.emu, &name).await.expect("the retained stack");
    assert!(s.tags().iter().any(|t| t.key() == Some("oms-data-operator/orphaned")), "retained as orphaned");
}
