//! The operator end to end on the bed: OmsRedis resources on a real kube-apiserver become stacks
//! on the AWS emulator, and status, Secrets, Events and deletion behave as documented.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use oms_data_operator::redis::template::param;
use oms_data_operator::redis::{OmsRedis, secret_key};
use oms_data_operator::stack::ownership;
use serde_json::json;
use std::time::Duration;
use support::controlplane;
use support::operator::{Operator, OperatorProcess};
use support::world::{
    WAIT, World, all_ready, condition, create_in, secret_data, seed, stack, stack_params, stack_tags,
};
use support::{eventually, unique_name};

#[tokio::test]
async fn dev_staging_and_prod_reach_ready_with_the_seeds_presets() {
    let w = World::new("life").await;
    let names: Vec<(String, &str)> =
        ["dev", "staging", "prod"].iter().map(|env| (unique_name(&format!("oms-redis-{env}")), *env)).collect();
    for (name, env) in &names {
        w.create(name, env, json!({})).await;
    }
    for (name, env) in &names {
        let o = w.ready(name).await;
        let status = o.status.clone().expect("status");
        let want = seed(env, &w.vpc);
        assert_eq!(status.stack.applied_parameters.as_ref(), Some(&want), "{env}: applied");
        let live = stack(w.emu, name).await.expect("the stack exists");
        // The stack runs the seed's parameters; the ones added since keep the template's defaults.
        let running = stack_params(&live);
        let seeds: std::collections::BTreeMap<String, String> =
            running.iter().filter(|(k, _)| want.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(seeds, want, "{env}: the stack runs the seed's parameters");
        assert_eq!(running[param::ENGINE], "redis", "{env}");
        assert_eq!(status.stack.stack_status.as_deref(), Some("CREATE_COMPLETE"));
        assert_eq!(status.stack.stack_name.as_deref(), Some(name.as_str()));
        assert_eq!(status.stack.stack_id.as_deref(), live.stack_id());
        assert_eq!(status.replication_group_id.as_deref(), Some(name.as_str()));
        assert_eq!(status.port, Some(6379));
        let tags = stack_tags(&live);
        assert_eq!(tags.get(ownership::NAMESPACE), Some(&w.ns));
        assert_eq!(tags.get(ownership::NAME), Some(name));
        assert_eq!(tags.get(ownership::UID), o.metadata.uid.as_ref());

        let secret = w.secret(&format!("{name}-redis")).await.expect("the Secret exists");
        let data = secret_data(&secret);
        let host = status.endpoint.clone().expect("an endpoint");
        assert_eq!(data[secret_key::HOST], host);
        assert_eq!(data[secret_key::PORT], "6379");
        assert_eq!(data[secret_key::READER_HOST], status.reader_endpoint.clone().expect("a reader endpoint"));
        assert_eq!(data[secret_key::REPLICATION_GROUP_ID], *name);
        assert!(data[secret_key::SECURITY_GROUP_ID].starts_with("sg-"));
        // Prod is encrypted in transit and, new, gets a password by default; the others neither.
        let (scheme, tls) = if *env == "prod" { ("rediss", "true") } else { ("redis", "false") };
        let userinfo = data.get(secret_key::PASSWORD).map(|p| format!(":{p}@")).unwrap_or_default();
        assert_eq!(data.contains_key(secret_key::PASSWORD), *env == "prod", "{env}");
        assert_eq!(data[secret_key::URL], format!("{scheme}://{userinfo}{host}:6379"), "{env}");
        assert_eq!(data[secret_key::TLS], tls);
        let owner = secret.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owner.len(), 1);
        assert_eq!(Some(&owner[0].uid), o.metadata.uid.as_ref());
        assert!(secret.metadata.annotations.unwrap_or_default().contains_key("oms-data-operator/content-hash"));
        assert_eq!(w.count(name, "cloudformation:CreateStack"), 1, "{env}: one create");
    }
}

#[tokio::test]
async fn spec_edits_update_the_stack_and_status_follows() {
    let w = World::new("edit").await;
    let name = unique_name("oms-redis-edit");
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;
    let secret_before = secret_data(&w.secret(&format!("{name}-redis")).await.expect("secret"));

    w.patch_spec(&name, json!({ "nodeType": "cache.t4g.small" })).await;
    let o = w.ready(&name).await;
    let applied = o.status.clone().and_then(|s| s.stack.applied_parameters).expect("applied");
    assert_eq!(applied[param::NODE_TYPE], "cache.t4g.small");
    assert_eq!(stack_params(&stack(w.emu, &name).await.expect("stack"))[param::NODE_TYPE], "cache.t4g.small");
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1);

    w.patch_spec(&name, json!({ "numCacheNodes": 2 })).await;
    let o = w.ready(&name).await;
    let applied = o.status.clone().and_then(|s| s.stack.applied_parameters).expect("applied");
    assert_eq!(applied[param::NUM_CACHE_NODES], "2");
    assert_eq!(applied[param::NODE_TYPE], "cache.t4g.small");
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 2);
    let groups =
        w.emu.elasticache().describe_replication_groups().replication_group_id(&name).send().await.expect("rg");
    assert_eq!(groups.replication_groups()[0].member_clusters().len(), 2);
    assert_eq!(groups.replication_groups()[0].cache_node_type(), Some("cache.t4g.small"));
    let secret_after = secret_data(&w.secret(&format!("{name}-redis")).await.expect("secret"));
    assert_eq!(secret_after[secret_key::HOST], secret_before[secret_key::HOST]);
}

#[tokio::test]
async fn a_label_only_edit_makes_no_aws_write_calls() {
    let w = World::new("label").await;
    let name = unique_name("oms-redis-label");
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;
    let writes = w.writes(&name);
    assert_eq!(writes, 1, "just the create: {:?}", w.emu.calls(Some(&name)));
    let metrics = w.operator.as_ref().expect("operator").metrics.clone();
    let reconciles = || metrics.encode().lines().filter(|l| l.starts_with("oms_data_operator_reconcile_total")).count();
    let before = metrics.encode();
    w.api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "team": "payments" } } })),
        )
        .await
        .expect("label");
    // The label change is seen and reconciled...
    eventually("a reconcile after the label edit", WAIT, || async { (metrics.encode() != before).then_some(()) }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(reconciles() > 0);
    // ...without a single AWS write.
    assert_eq!(w.writes(&name), writes);
    assert_eq!(condition(&w.get(&name).await, "Ready").map(|c| c.status.clone()).as_deref(), Some("True"));
}

#[tokio::test]
async fn a_failed_create_is_deleted_and_created_again_with_a_warning() {
    let w = World::new("cfail").await;
    let name = unique_name("oms-redis-cfail");
    let reason = "Cache node type cache.t4g.micro is not available in us-east-1a";
    w.emu.configure(json!({ "stack_delays": { name.clone(): 2.5 } }));
    w.emu.fail_next(&name, "create", "RedisReplicationGroup", reason);
    w.create(&name, "dev", json!({})).await;
    let note = w.event_note("StackRecreating").await;
    assert!(note.contains(reason) && note.contains("RedisReplicationGroup"), "{note}");
    let events = w.events("StackRecreating").await;
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));
    let o = w.ready(&name).await;
    assert_eq!(w.count(&name, "cloudformation:CreateStack"), 2);
    assert_eq!(w.count(&name, "cloudformation:DeleteStack"), 1);
    assert_eq!(o.status.and_then(|s| s.stack.stack_status).as_deref(), Some("CREATE_COMPLETE"));
}

#[tokio::test]
async fn a_rolled_back_update_is_reported_and_the_old_endpoints_stay_published() {
    let w = World::new("ufail").await;
    let name = unique_name("oms-redis-ufail");
    w.create(&name, "staging", json!({})).await;
    let before = w.ready(&name).await;
    let secret_before = secret_data(&w.secret(&format!("{name}-redis")).await.expect("secret"));
    let reason = "Insufficient capacity for cache.t4g.medium";
    w.emu.fail_next(&name, "update", "RedisReplicationGroup", reason);
    w.patch_spec(&name, json!({ "nodeType": "cache.t4g.medium" })).await;
    let o = w.condition_reason(&name, "Stalled", "True", "StackUpdateRolledBack").await;
    let ready = condition(&o, "Ready").expect("Ready");
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains(reason), "{}", ready.message);
    let status = o.status.clone().expect("status");
    assert_eq!(status.stack.stack_status.as_deref(), Some("UPDATE_ROLLBACK_COMPLETE"));
    assert_eq!(status.endpoint, before.status.as_ref().and_then(|s| s.endpoint.clone()));
    assert_eq!(secret_data(&w.secret(&format!("{name}-redis")).await.expect("secret")), secret_before);
    let note = w.event_note("StackUpdateRolledBack").await;
    assert!(note.contains(reason), "{note}");
    // No retry loop: the same spec is not sent again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1);
    // A new spec change tries again.
    w.patch_spec(&name, json!({ "nodeType": "cache.t4g.medium", "numCacheNodes": 3 })).await;
    let o = w.ready(&name).await;
    assert_eq!(o.status.and_then(|s| s.stack.stack_status).as_deref(), Some("UPDATE_COMPLETE"));
}

#[tokio::test]
async fn a_failed_delete_is_reported_and_retried() {
    let w = World::new("dfail").await;
    let name = unique_name("oms-redis-dfail");
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;
    let reason = "Cannot delete replication group while a snapshot is in progress";
    w.emu.fail_next(&name, "delete", "RedisReplicationGroup", reason);
    w.api.delete(&name, &DeleteParams::default()).await.expect("delete");
    let note = w.event_note("StackDeleteFailed").await;
    assert!(note.contains(reason), "{note}");
    w.gone(&name).await;
    assert!(stack(w.emu, &name).await.is_none(), "the stack is gone");
    assert_eq!(w.count(&name, "cloudformation:DeleteStack"), 2);
}

#[tokio::test]
async fn throttling_is_ridden_out() {
    let w = World::new("throttle").await;
    let name = unique_name("oms-redis-throttle");
    // More throttled calls than one SDK call retries through: reconciles fail and come back.
    w.emu.throttle("DescribeStacks", 7, &name);
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;
    assert!(w.count(&name, "cloudformation:DescribeStacks") > 7);
    assert_eq!(w.count(&name, "cloudformation:CreateStack"), 1);
    assert!(!w.events("AwsThrottled").await.is_empty(), "the throttling was reported");
}

#[tokio::test]
async fn each_deletion_policy_does_what_it_says() {
    let w = World::new("policy").await;
    let deleted = unique_name("oms-redis-del");
    let retained = unique_name("oms-redis-ret");
    let snapshotted = unique_name("oms-redis-snap");
    w.create(&deleted, "dev", json!({ "deletionPolicy": "Delete" })).await;
    w.create(&retained, "dev", json!({ "deletionPolicy": "Retain" })).await;
    w.create(&snapshotted, "staging", json!({ "deletionPolicy": "Snapshot" })).await;
    for n in [&deleted, &retained, &snapshotted] {
        w.ready(n).await;
    }
    for n in [&deleted, &retained, &snapshotted] {
        w.api.delete(n, &DeleteParams::default()).await.expect("delete");
    }
    for n in [&deleted, &retained, &snapshotted] {
        w.gone(n).await;
    }

    // Delete: the stack is gone, and the garbage collector takes the Secret.
    assert!(stack(w.emu, &deleted).await.is_none());
    eventually("the garbage collector to remove the Secret", WAIT, || async {
        w.secret(&format!("{deleted}-redis")).await.is_none().then_some(())
    })
    .await;

    // Retain: the stack stays, tagged orphaned; the Secret stays, owned by nobody.
    let kept = stack(w.emu, &retained).await.expect("the retained stack");
    assert_eq!(kept.stack_status().map(|s| s.as_str()), Some("UPDATE_COMPLETE"));
    assert_eq!(stack_tags(&kept).get(ownership::ORPHANED).map(String::as_str), Some("true"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let secret = w.secret(&format!("{retained}-redis")).await.expect("the retained Secret");
    assert!(secret.metadata.owner_references.clone().unwrap_or_default().is_empty());
    assert!(secret_data(&secret).contains_key(secret_key::HOST));

    // Snapshot: a snapshot named like the seed's backups, announced in an Event, then deletion.
    assert!(stack(w.emu, &snapshotted).await.is_none());
    let snaps =
        w.emu.elasticache().describe_snapshots().replication_group_id(&snapshotted).send().await.expect("snapshots");
    assert_eq!(snaps.snapshots().len(), 1, "one snapshot of the group");
    assert_eq!(snaps.snapshots()[0].snapshot_status(), Some("available"));
    let snapshot = snaps.snapshots()[0].snapshot_name().unwrap_or_default().to_string();
    let date = k8s_openapi::jiff::Timestamp::now().strftime("%Y%m%d").to_string();
    assert!(snapshot.starts_with(&format!("oms-redis-backup-{date}-")), "{snapshot}");
    assert!(snapshot.contains(&snapshotted), "{snapshot}");
    for reason in ["SnapshotStarted", "SnapshotCompleted"] {
        let note = w.event_note(reason).await;
        assert!(note.contains(&snapshot), "{reason}: {note}");
    }
}

#[tokio::test]
async fn the_secret_is_recreated_when_deleted_and_restored_when_edited() {
    let w = World::new("secret").await;
    let name = unique_name("oms-redis-sec");
    w.create(&name, "dev", json!({ "secretName": "cache-conn" })).await;
    w.ready(&name).await;
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let original = secret_data(&w.secret("cache-conn").await.expect("secret"));

    secrets.delete("cache-conn", &DeleteParams::default()).await.expect("delete the Secret");
    let recreated = eventually("the Secret to come back", WAIT, || async { w.secret("cache-conn").await }).await;
    assert_eq!(secret_data(&recreated), original);

    secrets
        .patch(
            "cache-conn",
            &PatchParams::default(),
            &Patch::Merge(json!({ "stringData": { secret_key::HOST: "evil.example" } })),
        )
        .await
        .expect("edit the Secret");
    eventually("the Secret to be restored", WAIT, || async {
        let s = w.secret("cache-conn").await?;
        (secret_data(&s) == original).then_some(())
    })
    .await;
    assert_eq!(w.writes(&name), 1, "repairing the Secret needs no AWS write");
}

#[tokio::test]
async fn a_stack_owned_in_another_namespace_is_refused_and_left_untouched() {
    let w = World::new("own-a").await;
    let other_ns = controlplane::test_namespace(&w.client, "own-b").await;
    let _other_operator = Operator::start(w.cp, w.emu, &other_ns).await;
    let name = unique_name("oms-redis-shared");
    w.create(&name, "dev", json!({})).await;
    w.ready(&name).await;
    let writes = w.writes(&name);

    let other: Api<OmsRedis> = Api::namespaced(w.client.clone(), &other_ns);
    let mut intruder = w.manifest("intruder", "dev", json!({ "stackName": name, "nodeType": "cache.t4g.small" }));
    intruder.metadata.namespace = Some(other_ns.clone());
    other.create(&PostParams::default(), &intruder).await.expect("create the intruder");
    let o = eventually("the intruder to stall", WAIT, || async {
        let o = other.get("intruder").await.ok()?;
        let c = condition(&o, "Stalled")?;
        (c.status == "True" && c.reason == "StackOwnedElsewhere").then_some(o)
    })
    .await;
    let msg = condition(&o, "Ready").map(|c| c.message.clone()).unwrap_or_default();
    assert!(msg.contains(&format!("{}/{name}", w.ns)), "names the owner: {msg}");
    assert_eq!(w.writes(&name), writes, "nothing was touched");
    let other_secrets: Api<Secret> = Api::namespaced(w.client.clone(), &other_ns);
    assert!(other_secrets.get_opt("intruder-redis").await.expect("get").is_none(), "no Secret for the intruder");

    // Deleting the intruder leaves the stack alone too.
    other.delete("intruder", &DeleteParams::default()).await.expect("delete the intruder");
    eventually("the intruder to go", WAIT, || async {
        matches!(other.get_opt("intruder").await, Ok(None)).then_some(())
    })
    .await;
    assert_eq!(w.writes(&name), writes);
    assert_eq!(
        stack(w.emu, &name).await.and_then(|s| s.stack_status().map(|s| s.as_str().to_string())).as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(condition(&w.get(&name).await, "Ready").map(|c| c.status.clone()).as_deref(), Some("True"));
}

#[tokio::test]
async fn an_untagged_stack_is_adopted_only_when_asked() {
    let w = World::new("adopt").await;
    let name = unique_name("oms-redis-adopt");
    let params: Vec<aws_sdk_cloudformation::types::Parameter> = seed("dev", &w.vpc)
        .into_iter()
        .map(|(k, v)| aws_sdk_cloudformation::types::Parameter::builder().parameter_key(k).parameter_value(v).build())
        .collect();
    let cfn = w.emu.cloudformation();
    cfn.create_stack()
        .stack_name(&name)
        .template_body(oms_data_operator::redis::template::TEMPLATE_BODY)
        .set_parameters(Some(params))
        .send()
        .await
        .expect("a stack made by hand");
    w.create(&name, "dev", json!({})).await;
    let o = w.condition_reason(&name, "Stalled", "True", "StackNotManaged").await;
    assert!(condition(&o, "Ready").map(|c| c.message.contains("adoptExistingStack")).unwrap_or(false));
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 0);

    w.patch_spec(&name, json!({ "adoptExistingStack": true })).await;
    w.ready(&name).await;
    let tags = stack_tags(&stack(w.emu, &name).await.expect("stack"));
    assert_eq!(tags.get(ownership::NAME), Some(&name));
    assert!(w.secret(&format!("{name}-redis")).await.is_some());
}

#[tokio::test]
async fn an_operator_killed_mid_create_and_restarted_makes_exactly_one_stack() {
    let w = World::new("crash").await;
    // The real binary, killed for real, in a namespace no in-process operator watches.
    let name = unique_name("oms-redis-crash");
    w.emu.configure(json!({ "stack_delays": { name.clone(): 4.0 } }));
    let crash_ns = controlplane::test_namespace(&w.client, "crash-bin").await;
    let api: Api<OmsRedis> = Api::namespaced(w.client.clone(), &crash_ns);
    let spawn = |access_key: &str| OperatorProcess::watching(w.emu, &w.cp.kubeconfig, &crash_ns, access_key, &[]);
    let mut first = spawn("crash-first");
    let mut manifest = w.manifest(&name, "dev", json!({}));
    manifest.metadata.namespace = Some(crash_ns.clone());
    api.create(&PostParams::default(), &manifest).await.expect("create");
    eventually("the operator to call CreateStack", WAIT, || async {
        (w.count(&name, "cloudformation:CreateStack") >= 1).then_some(())
    })
    .await;
    first.child.kill().expect("kill -9 the operator");
    let _ = first.child.wait();
    let status = stack(w.emu, &name).await.and_then(|s| s.stack_status().map(|s| s.as_str().to_string()));
    assert_eq!(status.as_deref(), Some("CREATE_IN_PROGRESS"), "killed mid-create");

    let second = spawn("crash-second");
    let ready = eventually("Ready after the restart", WAIT, || async {
        let o = api.get(&name).await.ok()?;
        (condition(&o, "Ready")?.status == "True").then_some(o)
    })
    .await;
    drop(second);
    assert_eq!(w.count(&name, "cloudformation:CreateStack"), 1, "exactly one create");
    let listed = w.emu.cloudformation().list_stacks().send().await.expect("list stacks");
    let live: Vec<_> = listed
        .stack_summaries()
        .iter()
        .filter(|s| {
            s.stack_name() == Some(name.as_str()) && s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE")
        })
        .collect();
    assert_eq!(live.len(), 1, "exactly one stack");
    assert_eq!(ready.status.and_then(|s| s.stack.stack_id).as_deref(), live[0].stack_id());
}

#[tokio::test]
async fn a_missing_vpc_stack_stalls_with_awss_message_and_recovers_when_it_appears() {
    let w = World::new("novpc").await;
    let name = unique_name("oms-redis-novpc");
    let vpc = unique_name("oms-vpc-late");
    let mut manifest = w.manifest(&name, "dev", json!({}));
    manifest.spec.vpc_stack_name = vpc.clone();
    w.api.create(&PostParams::default(), &manifest).await.expect("create");
    let o = w.condition_reason(&name, "Stalled", "True", "AwsValidationError").await;
    let msg = condition(&o, "Ready").map(|c| c.message.clone()).unwrap_or_default();
    assert!(msg.contains(&format!("No export named {vpc}-")), "AWS's own words stay: {msg}");
    for says in ["spec.vpcStackName", &format!("{vpc}-PrivateSubnetIds"), "must export"] {
        assert!(msg.contains(says), "{says:?} not in {msg}");
    }
    assert!(stack(w.emu, &name).await.is_none(), "nothing half-made");

    w.emu.deploy_vpc_named(&vpc).await;
    w.ready(&name).await;
}

#[tokio::test]
async fn a_change_while_the_stack_is_in_progress_waits_for_it() {
    let w = World::new("busy").await;
    let name = unique_name("oms-redis-busy");
    w.emu.configure(json!({ "stack_delays": { name.clone(): 3.0 } }));
    w.create(&name, "dev", json!({})).await;
    eventually("the create to start", WAIT, || async {
        (w.count(&name, "cloudformation:CreateStack") == 1).then_some(())
    })
    .await;
    w.patch_spec(&name, json!({ "nodeType": "cache.t4g.small" })).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = stack(w.emu, &name).await.and_then(|s| s.stack_status().map(|s| s.as_str().to_string()));
    assert_eq!(status.as_deref(), Some("CREATE_IN_PROGRESS"));
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 0, "no update while the create runs");
    let o = w.ready(&name).await;
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 1, "the change went in once the stack settled");
    assert_eq!(
        o.status.and_then(|s| s.stack.applied_parameters).expect("applied")[param::NODE_TYPE],
        "cache.t4g.small"
    );
}

#[tokio::test]
async fn alarms_notify_the_topic_with_the_given_thresholds_and_windows_reach_the_stack() {
    let w = World::new("alarms").await;
    let watched = unique_name("oms-redis-alarm");
    let quiet = unique_name("oms-redis-quiet");
    let topic = "arn:aws:sns:us-east-1:123456789012:oms-alerts";
    w.create(
        &watched,
        "staging",
        json!({
            "alarms": { "topicArn": topic, "allEnvironments": true, "cpuPercent": 60 },
            "maintenanceWindow": "mon:01:00-mon:02:00",
            "snapshotWindow": "03:00-04:00",
        }),
    )
    .await;
    w.create(&quiet, "dev", json!({})).await;
    let o = w.ready(&watched).await;
    let names = o.status.as_ref().map(|s| s.alarm_names.clone()).unwrap_or_default();
    assert_eq!(names, oms_data_operator::redis::template::alarm_names(&watched));
    let alarms = w.emu.alarms(&format!("{watched}-"));
    assert_eq!(alarms.len(), 4, "{alarms:?}");
    for a in &alarms {
        assert_eq!(a["alarm_actions"], json!([topic]), "{a}");
        assert_eq!(a["ok_actions"], json!([topic]), "{a}");
    }
    let cpu = alarms.iter().find(|a| a["metric_name"] == "CPUUtilization").expect("the CPU alarm");
    assert_eq!(cpu["threshold"].as_f64(), Some(60.0));
    let memory = alarms.iter().find(|a| a["metric_name"] == "DatabaseMemoryUsagePercentage").expect("memory");
    assert_eq!(memory["threshold"].as_f64(), Some(85.0), "an omitted threshold is the seed's");
    let live = stack_params(&stack(w.emu, &watched).await.expect("the stack"));
    assert_eq!(live[param::MAINTENANCE_WINDOW], "mon:01:00-mon:02:00");
    assert_eq!(live[param::SNAPSHOT_WINDOW], "03:00-04:00");

    let o = w.ready(&quiet).await;
    assert!(o.status.map(|s| s.alarm_names.is_empty()).unwrap_or(true), "dev has no alarms by default");
    assert!(w.emu.alarms(&format!("{quiet}-")).is_empty());
}

#[tokio::test]
async fn a_workload_too_big_for_its_node_type_is_warned_about_with_the_type_that_fits_and_the_cost_shows() {
    let w = World::new("sizing").await;
    let name = unique_name("oms-redis-size");
    // A million orders: ~2 GB of data, ~2.8 GB in Redis; a t4g.micro holds 384 MiB.
    w.create(&name, "dev", json!({ "workload": { "orders": 1_000_000 } })).await;
    let o = w.condition_reason(&name, "Undersized", "True", "NotEnoughHeadroom").await;
    let message = condition(&o, "Undersized").map(|c| c.message.clone()).unwrap_or_default();
    for says in [
        "cache.t4g.micro leaves 0%",
        "2.00 GB of data",
        "cache.m7g.large holds it with that headroom, at $110 a month for 1 node",
    ] {
        assert!(message.contains(says), "{says:?} not in: {message}");
    }
    let o = w.ready(&name).await;
    assert_eq!(condition(&o, "Stalled").map(|c| c.status.as_str()), Some("False"), "the cache still works");
    let sizing = o.status.as_ref().and_then(|s| s.sizing.clone()).expect("status.sizing");
    assert_eq!(sizing.monthly_cost.as_deref(), Some("$11"));
    assert_eq!(sizing.recommended_node_type.as_deref(), Some("cache.m7g.large"));
    assert!(w.event_note("NotEnoughHeadroom").await.contains("cache.m7g.large"));
    // `kubectl get omsr` shows the cost: the server's table for the kind has it.
    let table = cost_column(&w, &name).await;
    assert_eq!(table.as_deref(), Some("$11"));

    w.patch_spec(&name, json!({ "nodeType": "cache.m7g.large" })).await;
    let o = w.ready(&name).await;
    assert!(condition(&o, "Undersized").is_none(), "cleared after the update");
    assert_eq!(o.status.and_then(|s| s.sizing).and_then(|s| s.monthly_cost).as_deref(), Some("$110"));
    assert_eq!(cost_column(&w, &name).await.as_deref(), Some("$110"));
}

/// The Cost cell of `kubectl get omsr <name>`, as the apiserver renders the kind's table.
async fn cost_column(w: &World, name: &str) -> Option<String> {
    let path = format!("/apis/data.oms-spider.io/v1alpha1/namespaces/{}/omsredises/{name}", w.ns);
    let req = http::Request::get(path)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
    let table: serde_json::Value = serde_json::from_str(&w.client.request_text(req).await.ok()?).ok()?;
    let column = table["columnDefinitions"].as_array()?.iter().position(|c| c["name"] == "Cost")?;
    table["rows"][0]["cells"][column].as_str().map(String::from)
}

#[tokio::test]
async fn a_burst_of_creates_stays_within_the_aws_call_budget_and_a_short_throttling_storm_stays_quiet() {
    let w = World::new("budget").await;
    let ns = controlplane::test_namespace(&w.client, "budget-bin").await;
    let api: Api<OmsRedis> = Api::namespaced(w.client.clone(), &ns);
    let key = "budget-operator";
    let (rate, burst) = (4.0, 4.0);
    let (max_rps, burst_flag) = (rate.to_string(), burst.to_string());
    let extra = ["--concurrency", "8", "--aws-max-rps", max_rps.as_str(), "--aws-burst", burst_flag.as_str()];
    let op = OperatorProcess::watching(w.emu, &w.cp.kubeconfig, &ns, key, &extra);
    let names: Vec<String> = (0..8).map(|_| unique_name("oms-redis-budget")).collect();
    // A short storm on one stack: its next DescribeStacks calls answer Throttling (the SDK's own
    // retries included).
    let throttles = 6;
    w.emu.throttle("DescribeStacks", throttles, &names[0]);
    let started = std::time::Instant::now();
    create_in(&w, &api, &ns, &names, "dev", json!({})).await;
    all_ready(&api, &names).await;
    let took = started.elapsed().as_secs_f64();
    let calls: u64 = w.emu.calls_by_key(key).values().sum();
    // Every call took a token; the SDK's own retries of throttled calls did not.
    let allowed = burst + rate * took + f64::from(throttles);
    assert!(calls as f64 <= allowed, "{calls} AWS calls in {took:.1}s, the budget allows {allowed:.0}");
    assert!(calls >= 8 * 3, "8 creates, each polled: {calls}");
    // The storm was short: the budget absorbed it, and the user never saw it.
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(w.client.clone(), &ns)
        .list(&Default::default())
        .await
        .expect("events");
    let throttled: Vec<_> = events.items.iter().filter(|e| e.reason.as_deref() == Some("AwsThrottled")).collect();
    assert!(throttled.is_empty(), "a short storm reached the user: {throttled:?}");
    assert!(
        w.emu.calls_by_key(key).keys().any(|k| k == "cloudformation:DescribeStacks"),
        "the throttled stack was read"
    );
    let waited = op.metric("oms_data_operator_aws_budget_wait_seconds_total").unwrap_or(0.0);
    assert!(waited > 0.0, "the burst waited for the budget");
    assert!(op.metric("oms_data_operator_aws_budget_rate").is_some_and(|r| r > 0.0 && r <= rate));
}

#[tokio::test]
async fn stacks_in_progress_are_polled_together_and_a_settled_stack_is_read_once() {
    let w = World::new("survey").await;
    let ns = controlplane::test_namespace(&w.client, "survey-bin").await;
    let api: Api<OmsRedis> = Api::namespaced(w.client.clone(), &ns);
    let key = "survey-operator";
    // Resync every 2 s: idle passes come often enough to count within the test.
    let op = OperatorProcess::watching(w.emu, &w.cp.kubeconfig, &ns, key, &["--resync", "2"]);
    let names: Vec<String> = (0..10).map(|_| unique_name("oms-redis-survey")).collect();
    let delays: serde_json::Map<String, serde_json::Value> = names.iter().map(|n| (n.clone(), json!(4.0))).collect();
    w.emu.configure(json!({ "stack_delays": delays }));
    let started = std::time::Instant::now();
    create_in(&w, &api, &ns, &names, "dev", json!({})).await;
    all_ready(&api, &names).await;
    let took = started.elapsed().as_secs_f64();
    let calls = w.emu.calls_by_key(key);
    let n = |action: &str| calls.get(&format!("cloudformation:{action}")).copied().unwrap_or(0);
    // Each stack was 4 s in progress with a 0.3 s poll: 13 DescribeStacks each if polled one by one.
    assert_eq!(n("CreateStack"), 10, "{calls:?}");
    assert!(n("DescribeStacks") <= 10 * 2, "one read after each create settles, at most: {calls:?}");
    let sweeps_allowed = ((took / 0.3).ceil() as u64 * 2 + 4) * live_stack_pages(w.emu).await;
    assert!(n("ListStacks") <= sweeps_allowed, "{} ListStacks in {took:.1}s: {calls:?}", n("ListStacks"));
    // Settled: six resyncs of each resource cost no DescribeStacks and a few shared sweeps.
    let before = w.emu.calls_by_key(key);
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = w.emu.calls_by_key(key);
    let delta = |action: &str| {
        let k = format!("cloudformation:{action}");
        after.get(&k).copied().unwrap_or(0) - before.get(&k).copied().unwrap_or(0)
    };
    assert_eq!(delta("DescribeStacks"), 0, "idle resyncs reuse the descriptions: {after:?}");
    // A sweep is one ListStacks per page of the account's live stacks (other tests' included).
    let pages = live_stack_pages(w.emu).await;
    assert!(delta("ListStacks") <= (12 + 2) * pages, "at most one sweep per max poll interval (1 s): {after:?}");
    assert!(delta("ListStacks") >= 1, "the resyncs still look: {after:?}");
    drop(op);
}

/// Pages of ListStacks (every status but DELETE_COMPLETE) the account's stacks fill now.
async fn live_stack_pages(emu: &support::emulator::Emulator) -> u64 {
    use aws_sdk_cloudformation::types::StackStatus;
    let live: Vec<StackStatus> =
        StackStatus::values().iter().filter(|s| **s != "DELETE_COMPLETE").map(|s| StackStatus::from(*s)).collect();
    let cfn = emu.cloudformation();
    let (mut pages, mut token) = (0, None);
    loop {
        let out = cfn
            .list_stacks()
            .set_stack_status_filter(Some(live.clone()))
            .set_next_token(token.take())
            .send()
            .await
            .expect("list");
        pages += 1;
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return pages,
        }
    }
}
