//! Day-2 operations on the bed, as a platform team runs them with kubectl instead of the AWS CLI:
//! backups (OmsBackup) with their status, columns and deletion policies, safe under crashes and busy
//! groups; restores declared at creation, with real data carried over by the emulator between two
//! real redis-servers, and refused before any stack is made when the snapshot cannot seed the cache;
//! the snapshots deletion policy Snapshot takes, listed as backups; failover tests (OmsFailoverTest)
//! with a client on the primary endpoint throughout; and the optional endpoint check.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use oms_data_operator::backup::OmsBackup;
use oms_data_operator::failover::OmsFailoverTest;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use support::operator::{Operator, OperatorProcess, ProcessOptions};
use support::redis::TlsRedis;
use support::world::{WAIT, World, condition, secret_data, stack, stack_params};
use support::{eventually, unique_name};

const REGION: &str = "us-east-1";

fn backups(w: &World) -> Api<OmsBackup> {
    Api::namespaced(w.client.clone(), &w.ns)
}

fn failover_tests(w: &World) -> Api<OmsFailoverTest> {
    Api::namespaced(w.client.clone(), &w.ns)
}

async fn create_backup(w: &World, name: &str, source: &str, extra: Value) -> OmsBackup {
    let mut spec = json!({ "source": { "name": source } });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let b: OmsBackup = serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsBackup",
        "metadata": { "name": name }, "spec": spec,
    }))
    .expect("an OmsBackup");
    backups(w).create(&PostParams::default(), &b).await.expect("create the OmsBackup")
}

/// Waits for the backup's phase; on a phase it cannot leave, fails at once with its status.
async fn backup_phase(w: &World, name: &str, phase: &str) -> OmsBackup {
    eventually(&format!("backup {name} to be {phase}"), WAIT, || async {
        let b = backups(w).get(name).await.ok()?;
        let now = serde_json::to_value(b.status.as_ref()?.phase?).ok()?;
        if now != phase && (now == "Completed" || now == "Failed") {
            panic!("backup {name} is {now}, not {phase}: {:?}", b.status);
        }
        (now == phase).then_some(b)
    })
    .await
}

fn backup_condition<'a>(
    b: &'a OmsBackup,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    b.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

async fn snapshot_exists(w: &World, name: &str) -> bool {
    match w.emu.elasticache().describe_snapshots().snapshot_name(name).send().await {
        Ok(out) => !out.snapshots().is_empty(),
        Err(e) => {
            let text = format!("{e:?}");
            assert!(text.contains("SnapshotNotFound"), "describe snapshot {name}: {text}");
            false
        }
    }
}

async fn a_snapshot(w: &World, backup: &str) -> String {
    backups(w).get(backup).await.expect("backup").status.and_then(|s| s.snapshot_name).expect("a snapshot name")
}

async fn snapshots_of(w: &World, group: &str) -> Vec<String> {
    let out =
        w.emu.elasticache().describe_snapshots().replication_group_id(group).send().await.expect("describe snapshots");
    out.snapshots().iter().filter_map(|s| s.snapshot_name().map(str::to_string)).collect()
}

fn kubectl(w: &World, args: &[&str]) -> String {
    let out = std::process::Command::new("kubectl")
        .args(["--kubeconfig", &w.cp.kubeconfig.to_string_lossy(), "-n", &w.ns])
        .args(args)
        .output()
        .expect("kubectl");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A dev cache bound to a redis-server of its own, Ready.
async fn bound_cache(w: &World, prefix: &str, env: &str, redis: &TlsRedis, extra: Value) -> String {
    let name = unique_name(prefix);
    w.emu.bind_redis(&name, redis);
    w.create(&name, env, extra).await;
    w.ready(&name).await;
    name
}

#[tokio::test]
async fn a_backup_takes_one_snapshot_shows_it_in_status_and_columns_and_its_policy_decides_its_fate() {
    let w = World::new("day2-backup").await;
    let cache = unique_name("oms-redis-bk");
    w.create(&cache, "dev", json!({})).await;
    w.ready(&cache).await;

    create_backup(&w, "nightly", &cache, json!({})).await;
    let b = backup_phase(&w, "nightly", "Completed").await;
    let s = b.status.clone().expect("status");
    let snapshot = s.snapshot_name.clone().expect("a snapshot name");
    assert!(snapshot.starts_with("oms-redis-backup-20") && snapshot.contains("-nightly-"), "{snapshot}");
    assert_eq!(s.replication_group_id.as_deref(), Some(cache.as_str()));
    assert_eq!(s.region.as_deref(), Some(REGION));
    assert!(s.size.is_some() && s.started_at.is_some() && s.completed_at.is_some(), "{s:?}");
    assert_eq!(s.engine.as_deref(), Some("redis"));
    let ready = backup_condition(&b, "Ready").expect("Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "SnapshotAvailable"));
    assert!(ready.message.contains("restoreFrom.snapshotName"), "says how to restore it: {}", ready.message);
    assert!(w.event_note("BackupStarted").await.contains(&snapshot));
    assert!(w.event_note("BackupCompleted").await.contains(&snapshot));
    assert_eq!(snapshots_of(&w, &cache).await, vec![snapshot.clone()], "one snapshot of the group");
    assert_eq!(w.count(&cache, "elasticache:CreateSnapshot"), 1);

    let table = kubectl(&w, &["get", "omsbackups"]);
    for column in ["SOURCE", "PHASE", "SNAPSHOT", "SIZE", "STARTED", "FINISHED", "AGE"] {
        assert!(table.contains(column), "{column} in:\n{table}");
    }
    assert!(table.contains("Completed") && table.contains(&snapshot) && table.contains(&cache), "{table}");

    // The policy can change after the fact, and the change is observed (kstatus and Argo CD see it current).
    let patched = backups(&w)
        .patch("nightly", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "deletionPolicy": "Retain" } })))
        .await
        .expect("patch the policy");
    let generation = patched.metadata.generation;
    backups(&w)
        .patch("nightly", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "deletionPolicy": "Delete" } })))
        .await
        .expect("patch the policy");
    backups(&w)
        .patch("nightly", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "deletionPolicy": "Retain" } })))
        .await
        .expect("patch the policy back");
    eventually("the new generation to be observed", WAIT, || async {
        let b = backups(&w).get("nightly").await.ok()?;
        let current = b.metadata.generation;
        let s = b.status.as_ref()?;
        let ready = backup_condition(&b, "Ready")?;
        (current > generation && s.observed_generation == current && ready.observed_generation == current).then_some(())
    })
    .await;

    // Policy Delete takes the snapshot with it; Retain (the default) keeps it.
    create_backup(&w, "disposable", &cache, json!({ "deletionPolicy": "Delete" })).await;
    let disposable = backup_phase(&w, "disposable", "Completed").await;
    let disposable_snapshot = disposable.status.and_then(|s| s.snapshot_name).expect("name");
    assert!(snapshot_exists(&w, &disposable_snapshot).await);
    backups(&w).delete("disposable", &DeleteParams::default()).await.expect("delete");
    eventually("the Delete backup to go", WAIT, || async {
        matches!(backups(&w).get_opt("disposable").await, Ok(None)).then_some(())
    })
    .await;
    assert!(!snapshot_exists(&w, &disposable_snapshot).await, "deletionPolicy Delete deleted the snapshot");
    assert!(w.event_note("SnapshotDeleted").await.contains(&disposable_snapshot));

    backups(&w).delete("nightly", &DeleteParams::default()).await.expect("delete");
    eventually("the Retain backup to go", WAIT, || async {
        matches!(backups(&w).get_opt("nightly").await, Ok(None)).then_some(())
    })
    .await;
    assert!(snapshot_exists(&w, &snapshot).await, "deletionPolicy Retain kept the snapshot");
    assert!(w.event_note("SnapshotKept").await.contains(&snapshot));
}

/// The tags the operator gives a snapshot of `cache` taken for backup `backup`.
async fn operator_tags(w: &World, cache: &str, backup: &str) -> Vec<aws_sdk_elasticache::types::Tag> {
    let uid = w.get(cache).await.metadata.uid.expect("uid");
    let backup_uid = backups(w).get(backup).await.expect("the backup").metadata.uid.expect("uid");
    [
        ("oms-data-operator/cluster-id", "oms-bed-cluster"),
        ("oms-data-operator/kind", "OmsRedis"),
        ("oms-data-operator/namespace", w.ns.as_str()),
        ("oms-data-operator/name", cache),
        ("oms-data-operator/uid", uid.as_str()),
        ("oms-data-operator/backup", backup),
        ("oms-data-operator/backup-uid", backup_uid.as_str()),
    ]
    .iter()
    .map(|(k, v)| aws_sdk_elasticache::types::Tag::builder().key(*k).value(*v).build())
    .collect()
}

/// A backup whose name the operator recorded (as it does before CreateSnapshot), then crashed.
async fn recorded_backup(w: &World, name: &str, cache: &str, snapshot: &str, extra: Value) {
    let mut spec = json!({ "snapshotName": snapshot });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    create_backup(w, name, cache, spec).await;
    let status = json!({ "status": {
        "phase": "Pending", "snapshotName": snapshot, "replicationGroupId": cache, "region": REGION,
    }});
    backups(w).patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.expect("record the name");
}

#[tokio::test]
async fn a_crash_around_create_snapshot_never_takes_a_second_snapshot_nor_claims_a_foreign_one() {
    let mut w = World::new("day2-crash").await;
    let cache = unique_name("oms-redis-cr");
    w.create(&cache, "dev", json!({})).await;
    w.ready(&cache).await;
    w.operator.take().expect("operator").stop().await;
    let ec = w.emu.elasticache();
    let (after, before, foreign) = (
        unique_name("oms-redis-backup-after"),
        unique_name("oms-redis-backup-before"),
        unique_name("oms-redis-backup-x"),
    );

    // Crashed after CreateSnapshot was sent: the snapshot exists, tagged, and status has only its name.
    recorded_backup(&w, "after-call", &cache, &after, json!({})).await;
    ec.create_snapshot()
        .replication_group_id(&cache)
        .snapshot_name(&after)
        .set_tags(Some(operator_tags(&w, &cache, "after-call").await))
        .send()
        .await
        .expect("the snapshot the crashed operator started");
    eventually("the group to be free again", WAIT, || async {
        let g = ec.describe_replication_groups().replication_group_id(&cache).send().await.ok()?;
        (g.replication_groups().first()?.status() == Some("available")).then_some(())
    })
    .await;
    // Crashed before it: the name is recorded, nothing was sent.
    recorded_backup(&w, "before-call", &cache, &before, json!({})).await;
    // Someone else's snapshot under the name a backup asks for.
    ec.create_snapshot().replication_group_id(&cache).snapshot_name(&foreign).send().await.expect("a foreign snapshot");
    eventually("the group to be free again", WAIT, || async {
        let g = ec.describe_replication_groups().replication_group_id(&cache).send().await.ok()?;
        (g.replication_groups().first()?.status() == Some("available")).then_some(())
    })
    .await;
    create_backup(&w, "foreign", &cache, json!({ "snapshotName": foreign, "deletionPolicy": "Delete" })).await;
    let calls_before = w.count(&cache, "elasticache:CreateSnapshot");

    w.operator = Some(Operator::start(w.cp, w.emu, &w.ns).await);
    let a = backup_phase(&w, "after-call", "Completed").await;
    assert_eq!(a.status.and_then(|s| s.snapshot_name), Some(after.clone()));
    let b = backup_phase(&w, "before-call", "Completed").await;
    assert_eq!(b.status.and_then(|s| s.snapshot_name), Some(before.clone()));
    let f = backup_phase(&w, "foreign", "Failed").await;
    let failure = f.status.and_then(|s| s.failure).unwrap_or_default();
    assert!(failure.contains("was not taken by this operator") && failure.contains("left alone"), "{failure}");
    assert_eq!(
        w.count(&cache, "elasticache:CreateSnapshot") - calls_before,
        1,
        "the operator sent exactly one CreateSnapshot: for the backup that had not sent it"
    );
    let mut all = snapshots_of(&w, &cache).await;
    all.sort();
    let mut want = vec![after, before, foreign.clone()];
    want.sort();
    assert_eq!(all, want, "one snapshot per backup, none twice");

    // Another backup naming a snapshot of the same source (a copied name) does not take it over.
    create_backup(
        &w,
        "copycat",
        &cache,
        json!({ "snapshotName": a_snapshot(&w, "after-call").await, "deletionPolicy": "Delete" }),
    )
    .await;
    let c = backup_phase(&w, "copycat", "Failed").await;
    assert!(c.status.and_then(|s| s.failure).unwrap_or_default().contains("was not taken by this operator"));
    backups(&w).delete("copycat", &DeleteParams::default()).await.expect("delete");
    eventually("the copycat backup to go", WAIT, || async {
        matches!(backups(&w).get_opt("copycat").await, Ok(None)).then_some(())
    })
    .await;
    assert!(snapshot_exists(&w, &a_snapshot(&w, "after-call").await).await, "the other backup's snapshot survived");

    // A backup that never owned its snapshot does not delete it, whatever its policy.
    backups(&w).delete("foreign", &DeleteParams::default()).await.expect("delete");
    eventually("the foreign backup to go", WAIT, || async {
        matches!(backups(&w).get_opt("foreign").await, Ok(None)).then_some(())
    })
    .await;
    assert!(snapshot_exists(&w, &foreign).await, "someone else's snapshot survived deletionPolicy Delete");
}

#[tokio::test]
async fn a_backup_of_a_busy_group_waits_and_says_so() {
    let w = World::new("day2-busy").await;
    let cache = unique_name("oms-redis-bz");
    w.create(&cache, "dev", json!({})).await;
    w.ready(&cache).await;
    // A long stack update keeps the group modifying.
    w.emu.configure(json!({ "stack_delays": { cache.clone(): 6.0 } }));
    w.patch_spec(&cache, json!({ "numCacheNodes": 2 })).await;
    let ec = w.emu.elasticache();
    eventually("the group to be modifying", WAIT, || async {
        let g = ec.describe_replication_groups().replication_group_id(&cache).send().await.ok()?;
        (g.replication_groups().first()?.status() == Some("modifying")).then_some(())
    })
    .await;
    create_backup(&w, "while-busy", &cache, json!({})).await;
    let waiting = eventually("the backup to say it waits", WAIT, || async {
        let b = backups(&w).get("while-busy").await.ok()?;
        let c = backup_condition(&b, "Reconciling")?;
        (c.reason == "SourceBusy").then_some(b)
    })
    .await;
    let message = &backup_condition(&waiting, "Reconciling").expect("condition").message;
    assert!(message.contains("busy") && message.contains("once it is available"), "{message}");
    assert_eq!(serde_json::to_value(waiting.status.and_then(|s| s.phase)).ok(), Some(json!("Pending")));
    backup_phase(&w, "while-busy", "Completed").await;
    assert_eq!(snapshots_of(&w, &cache).await.len(), 1);
    w.emu.configure(json!({ "stack_delays": { cache.clone(): null } }));
}

#[tokio::test]
async fn a_restore_from_a_backup_brings_its_data_into_a_new_ready_cache_and_restoring_is_creation_only() {
    let (a, b) = (TlsRedis::start_plain().expect("redis a"), TlsRedis::start_plain().expect("redis b"));
    let w = World::new("day2-restore").await;
    let source = bound_cache(&w, "oms-redis-src", "dev", &a, json!({})).await;
    assert_eq!(a.admin(&["SET", "order:binance:42", "{\"clientOrderId\":\"c-1\"}"]), "OK");
    create_backup(&w, "before-migration", &source, json!({})).await;
    let snapshot =
        backup_phase(&w, "before-migration", "Completed").await.status.and_then(|s| s.snapshot_name).expect("name");

    let restored = unique_name("oms-redis-rst");
    w.emu.bind_redis(&restored, &b);
    w.create(&restored, "dev", json!({ "restoreFrom": { "snapshotName": snapshot } })).await;
    let o = w.ready(&restored).await;
    assert_eq!(b.admin(&["GET", "order:binance:42"]), "{\"clientOrderId\":\"c-1\"}", "the data came along");
    let s = stack(w.emu, &restored).await.expect("the restored stack");
    assert_eq!(stack_params(&s).get("SnapshotName"), Some(&snapshot), "restored through the template");
    let secret = w.secret(&format!("{restored}-redis")).await.expect("the connection Secret");
    assert_eq!(secret_data(&secret)["REDIS_PORT"], b.port.to_string());
    assert!(o.status.and_then(|s| s.endpoint).is_some());
    let creating = w
        .events("StackCreating")
        .await
        .into_iter()
        .filter_map(|e| e.message)
        .find(|m| m.contains(&restored))
        .expect("a StackCreating Event");
    assert!(creating.contains(&format!("from snapshot {snapshot}")), "{creating}");

    // Restoring onto a running cache, or changing what a cache was restored from, is refused at apply.
    for (name, spec) in [
        (&source, json!({ "restoreFrom": { "snapshotName": snapshot } })),
        (&restored, json!({ "restoreFrom": { "snapshotName": "oms-redis-backup-other" } })),
        (&restored, json!({ "restoreFrom": null })),
    ] {
        let refused = w
            .api
            .patch(name, &PatchParams::default(), &Patch::Merge(json!({ "spec": spec })))
            .await
            .expect_err("refused at apply time");
        let text = refused.to_string();
        assert!(
            text.contains("restoreFrom can only be given before the cache's stack is created")
                && text.contains("create a new OmsRedis"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn restores_from_missing_or_incompatible_snapshots_stall_before_any_stack_is_made() {
    let w = World::new("day2-restore-bad").await;
    let missing = unique_name("oms-redis-miss");
    w.create(&missing, "dev", json!({ "restoreFrom": { "snapshotName": "oms-redis-backup-never-taken" } })).await;
    let o = w.condition_reason(&missing, "Stalled", "True", "RestoreSnapshotNotFound").await;
    let message = &condition(&o, "Stalled").expect("Stalled").message;
    assert!(message.contains("oms-redis-backup-never-taken") && message.contains("does not exist"), "{message}");
    assert!(message.contains("kubectl get omsbackups"), "says where to look: {message}");
    assert!(message.contains("fix spec.restoreFrom.snapshotName"), "says what to change: {message}");

    // Restoring into an adopted stack would replace its replication group: refused at apply time.
    let both = w.manifest(
        &unique_name("oms-redis-both"),
        "dev",
        json!({ "adoptExistingStack": true, "restoreFrom": { "snapshotName": "oms-redis-backup-x" } }),
    );
    let refused = w.api.create(&PostParams::default(), &both).await.expect_err("refused at apply time");
    assert!(refused.to_string().contains("restoreFrom and adoptExistingStack cannot go together"), "{refused}");

    // A Redis OSS 7.1 snapshot cannot seed a 6.2 cache.
    let source = unique_name("oms-redis-71");
    w.create(&source, "dev", json!({})).await;
    w.ready(&source).await;
    create_backup(&w, "of-71", &source, json!({})).await;
    let snapshot = backup_phase(&w, "of-71", "Completed").await.status.and_then(|s| s.snapshot_name).expect("name");
    let older = unique_name("oms-redis-62");
    w.create(&older, "dev", json!({ "engineVersion": "6.2", "restoreFrom": { "snapshotName": snapshot } })).await;
    let o = w.condition_reason(&older, "Stalled", "True", "RestoreSnapshotIncompatible").await;
    let message = &condition(&o, "Stalled").expect("Stalled").message;
    assert!(message.contains("engineVersion to 7.1 or newer"), "says what to change: {message}");

    for name in [&missing, &older] {
        assert!(stack(w.emu, name).await.is_none(), "no stack for {name}");
        assert_eq!(w.count(name, "cloudformation:CreateStack"), 0, "no CreateStack for {name}");
    }
    // Nothing was made: a typo is fixed in place, and deleting is immediate.
    w.patch_spec(&missing, json!({ "restoreFrom": { "snapshotName": snapshot } })).await;
    w.ready(&missing).await;
    w.api.delete(&older, &DeleteParams::default()).await.expect("delete");
    w.gone(&older).await;
}

#[tokio::test]
async fn the_snapshot_deletion_policy_takes_is_listed_as_a_backup_and_restores() {
    let (a, b) = (TlsRedis::start_plain().expect("redis a"), TlsRedis::start_plain().expect("redis b"));
    let w = World::new("day2-final").await;
    let cache = bound_cache(&w, "oms-redis-fin", "dev", &a, json!({ "deletionPolicy": "Snapshot" })).await;
    assert_eq!(a.admin(&["SET", "position:c1:BTCUSDT", "1.5"]), "OK");
    w.api.delete(&cache, &DeleteParams::default()).await.expect("delete");
    w.gone(&cache).await;

    let listed = backups(&w)
        .list(&ListParams::default().labels("data.oms-spider.io/taken-by=deletion-policy"))
        .await
        .expect("list backups");
    assert_eq!(listed.items.len(), 1, "one OmsBackup for the final snapshot");
    let name = listed.items[0].metadata.name.clone().expect("name");
    let backup = backup_phase(&w, &name, "Completed").await;
    assert_eq!(backup.spec.source.name, cache);
    let snapshot = backup.status.and_then(|s| s.snapshot_name).expect("snapshot");
    assert_eq!(backup.spec.snapshot_name.as_deref(), Some(snapshot.as_str()));
    assert!(snapshot_exists(&w, &snapshot).await);
    let table = kubectl(&w, &["get", "omsb"]);
    assert!(table.contains(&snapshot) && table.contains("Completed"), "{table}");

    let restored = unique_name("oms-redis-back");
    w.emu.bind_redis(&restored, &b);
    w.create(&restored, "dev", json!({ "restoreFrom": { "snapshotName": snapshot } })).await;
    w.ready(&restored).await;
    assert_eq!(b.admin(&["GET", "position:c1:BTCUSDT"]), "1.5");
}

/// A client on one connection to the primary endpoint, PINGing until stopped: (answers, failures).
fn steady_client(host: &str, port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u32, u32)> {
    let address = format!("{host}:{port}");
    std::thread::spawn(move || {
        let ok = AtomicU32::new(0);
        let mut failed = 0;
        let stream = std::net::TcpStream::connect(&address).expect("connect to the primary endpoint");
        stream.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        while !stop.load(Ordering::Relaxed) {
            let mut line = String::new();
            let answered = writer.write_all(b"PING\r\n").is_ok() && reader.read_line(&mut line).is_ok();
            if answered && line.trim() == "+PONG" {
                ok.fetch_add(1, Ordering::Relaxed);
            } else {
                failed += 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (ok.load(Ordering::Relaxed), failed)
    })
}

async fn create_failover_test(w: &World, name: &str, source: &str) {
    let t: OmsFailoverTest = serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsFailoverTest",
        "metadata": { "name": name }, "spec": { "source": { "name": source } },
    }))
    .expect("an OmsFailoverTest");
    failover_tests(w).create(&PostParams::default(), &t).await.expect("create the OmsFailoverTest");
}

async fn failover_phase(w: &World, name: &str, phase: &str) -> OmsFailoverTest {
    eventually(&format!("failover test {name} to be {phase}"), WAIT, || async {
        let t = failover_tests(w).get(name).await.ok()?;
        let now = serde_json::to_value(t.status.as_ref()?.phase?).ok()?;
        (now == phase).then_some(t)
    })
    .await
}

#[tokio::test]
async fn a_failover_test_on_staging_moves_the_primary_while_a_client_on_the_primary_endpoint_keeps_working() {
    let redis = TlsRedis::start_plain().expect("redis");
    let w = World::new("day2-failover").await;
    let cache = bound_cache(&w, "oms-redis-fo", "staging", &redis, json!({})).await;
    let secret_name = format!("{cache}-redis");
    let before: Secret = w.secret(&secret_name).await.expect("Secret");
    let before = secret_data(&before);
    let stop = Arc::new(AtomicBool::new(false));
    let port: u16 = before["REDIS_PORT"].parse().expect("port");
    let client = steady_client(&before["REDIS_HOST"], port, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    create_failover_test(&w, "drill", &cache).await;
    let t = failover_phase(&w, "drill", "Succeeded").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, failed) = client.join().expect("the client thread");
    assert_eq!(failed, 0, "the client on the primary endpoint never failed ({answered} answers)");
    assert!(answered >= 5, "it was asking throughout: {answered}");

    let s = t.status.expect("status");
    assert_eq!(s.node_groups.len(), 1, "{s:?}");
    let ng = &s.node_groups[0];
    assert_eq!(ng.node_group_id, "0001");
    assert!(
        ng.primary_before.is_some() && ng.primary_after.is_some() && ng.primary_before != ng.primary_after,
        "{ng:?}"
    );
    assert!(s.duration_seconds.is_some() && s.started_at.is_some() && s.completed_at.is_some(), "{s:?}");
    let note = w.event_note("FailoverSucceeded").await;
    assert!(note.contains(ng.primary_after.as_deref().unwrap_or("?")) && note.contains("available again"), "{note}");
    let after = secret_data(&w.secret(&secret_name).await.expect("Secret"));
    assert_eq!(after["REDIS_HOST"], before["REDIS_HOST"], "the primary endpoint did not change");
    assert_eq!(w.count(&cache, "elasticache:TestFailover"), 1);
    let table = kubectl(&w, &["get", "omsft"]);
    assert!(table.contains("Succeeded") && table.contains("BEFORE") && table.contains("AFTER"), "{table}");

    // The record cannot be edited into another test.
    let refused = failover_tests(&w)
        .patch("drill", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "nodeGroupId": "0002" } })))
        .await
        .expect_err("immutable");
    assert!(refused.to_string().contains("create another one to test again"), "{refused}");
}

#[tokio::test]
async fn a_failover_test_whose_request_went_out_before_a_crash_is_not_sent_again() {
    let redis = TlsRedis::start_plain().expect("redis");
    let mut w = World::new("day2-failover-crash").await;
    let cache = bound_cache(&w, "oms-redis-fc", "staging", &redis, json!({})).await;
    w.operator.take().expect("operator").stop().await;
    let ec = w.emu.elasticache();
    let group = ec.describe_replication_groups().replication_group_id(&cache).send().await.expect("describe");
    let primary = group.replication_groups()[0].node_groups()[0]
        .node_group_members()
        .iter()
        .find(|m| m.current_role() == Some("primary"))
        .and_then(|m| m.cache_cluster_id())
        .expect("a primary")
        .to_string();
    // The operator recorded the request, sent TestFailover, and crashed before recording the start.
    create_failover_test(&w, "drill", &cache).await;
    let requested = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({ "status": {
        "phase": "Running", "replicationGroupId": cache, "region": REGION, "requestedAt": requested,
        "nodeGroups": [{ "nodeGroupId": "0001", "primaryBefore": primary }],
    }});
    failover_tests(&w).patch_status("drill", &PatchParams::default(), &Patch::Merge(status)).await.expect("record");
    ec.test_failover().replication_group_id(&cache).node_group_id("0001").send().await.expect("the crashed call");

    w.operator = Some(Operator::start(w.cp, w.emu, &w.ns).await);
    let t = failover_phase(&w, "drill", "Succeeded").await;
    assert_eq!(w.count(&cache, "elasticache:TestFailover"), 1, "the group failed over once");
    let ng = &t.status.expect("status").node_groups[0];
    assert_eq!(ng.primary_before.as_deref(), Some(primary.as_str()));
    assert!(ng.primary_after.is_some() && ng.primary_after != ng.primary_before, "{ng:?}");
}

#[tokio::test]
async fn a_failover_test_on_dev_is_refused_and_changes_nothing() {
    let w = World::new("day2-failover-dev").await;
    let cache = unique_name("oms-redis-fd");
    w.create(&cache, "dev", json!({})).await;
    w.ready(&cache).await;
    create_failover_test(&w, "drill", &cache).await;
    let t = failover_phase(&w, "drill", "Refused").await;
    let message = t.status.and_then(|s| s.message).unwrap_or_default();
    assert!(message.contains("automatic failover is disabled") && message.contains("staging and prod"), "{message}");
    let stalled = w.event_note("FailoverNotEnabled").await;
    assert!(stalled.contains(&cache), "{stalled}");
    assert_eq!(w.count(&cache, "elasticache:TestFailover"), 0, "ElastiCache was not asked");
}

#[tokio::test]
async fn the_endpoint_check_reports_reachable_and_unreachable_endpoints_without_touching_ready() {
    let redis = TlsRedis::start_plain().expect("redis");
    let w = World::new("day2-health").await;
    let check = json!({ "healthCheck": { "enabled": true, "intervalSeconds": 10 } });
    let reachable = bound_cache(&w, "oms-redis-hc", "dev", &redis, check.clone()).await;
    let o = w.condition_reason(&reachable, "EndpointReachable", "True", "EndpointAnswered").await;
    let c = condition(&o, "EndpointReachable").expect("condition");
    assert!(c.message.contains("answered PONG") && c.message.contains(" ms"), "{}", c.message);
    let last = o.status.as_ref().and_then(|s| s.stack.endpoint_check.clone()).expect("the last check");
    assert!(last.reachable && last.latency_milliseconds >= 0);

    // Nothing listens where this one points: Ready stays True, the check says why.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = listener.local_addr().expect("addr").port();
    drop(listener);
    let unreachable = unique_name("oms-redis-hx");
    w.emu.configure(json!({ "redis_bindings": { unreachable.clone(): {
        "host": "127.0.0.1", "port": closed_port, "tls": false, "admin_user": "x", "admin_password": "y",
    }}}));
    w.create(&unreachable, "dev", check).await;
    let o = w.condition_reason(&unreachable, "EndpointReachable", "False", "EndpointUnreachable").await;
    let ready = condition(&o, "Ready").expect("Ready");
    assert_eq!(ready.status, "True", "an unreachable endpoint never holds Ready back");
    let c = condition(&o, "EndpointReachable").expect("condition");
    assert!(c.message.contains(&format!("127.0.0.1:{closed_port}")), "{}", c.message);
    assert!(w.event_note("EndpointUnreachable").await.contains(&format!("127.0.0.1:{closed_port}")));
    w.emu.configure(json!({ "redis_bindings": { unreachable.clone(): null } }));

    // An endpoint that accepts and never answers: the check takes seconds, and the reconcile does not
    // wait for it (Ready is written before any check result is).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let slow = unique_name("oms-redis-hs");
    w.emu.configure(json!({ "redis_bindings": { slow.clone(): {
        "host": "127.0.0.1", "port": silent_port, "tls": false, "admin_user": "x", "admin_password": "y",
    }}}));
    w.create(&slow, "dev", json!({ "healthCheck": { "enabled": true, "intervalSeconds": 10 } })).await;
    let first_ready = w.ready(&slow).await;
    assert!(
        first_ready.status.as_ref().and_then(|s| s.stack.endpoint_check.as_ref()).is_none(),
        "Ready did not wait for the check: {:?}",
        first_ready.status.as_ref().map(|s| &s.stack.endpoint_check)
    );
    let o = w.condition_reason(&slow, "EndpointReachable", "False", "EndpointUnreachable").await;
    let c = condition(&o, "EndpointReachable").expect("condition");
    assert!(c.message.contains("took longer than"), "{}", c.message);
    w.emu.configure(json!({ "redis_bindings": { slow.clone(): null } }));

    // Without the field there is no check and no condition.
    let plain = unique_name("oms-redis-hn");
    w.create(&plain, "dev", json!({})).await;
    let o = w.ready(&plain).await;
    assert!(condition(&o, "EndpointReachable").is_none());
}

#[tokio::test]
async fn the_endpoint_check_logs_in_over_tls_with_the_operators_password() {
    let redis = TlsRedis::start().expect("TLS redis");
    let mut w = World::new("day2-health-tls").await;
    w.operator.take().expect("operator").stop().await;
    // The bed's CA stands in for the public roots an ElastiCache certificate chains to.
    let ca = redis.ca_file.to_string_lossy().to_string();
    let _op = OperatorProcess::spawn(
        w.emu,
        ProcessOptions {
            kubeconfig: &w.cp.kubeconfig,
            access_key: "day2-tls",
            args: vec![format!("--namespaces={}", w.ns), "--poll-interval=0.3".into(), "--max-poll-interval=1".into()],
            log: None,
            pod_name: None,
            env: &[("SSL_CERT_FILE", ca.as_str())],
        },
    );
    let cache = bound_cache(
        &w,
        "oms-redis-ht",
        "prod",
        &redis,
        json!({ "auth": { "enabled": true }, "healthCheck": { "enabled": true } }),
    )
    .await;
    let o = w.condition_reason(&cache, "EndpointReachable", "True", "EndpointAnswered").await;
    let c = condition(&o, "EndpointReachable").expect("condition");
    assert!(c.message.contains("TLS, AUTH, PING"), "{}", c.message);
    let password = secret_data(&w.secret(&format!("{cache}-redis")).await.expect("Secret"))["REDIS_PASSWORD"].clone();
    assert!(!c.message.contains(&password), "the password is not in the condition");
}
