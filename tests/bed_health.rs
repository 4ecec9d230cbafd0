//! Honest health for GitOps tools. Real OmsRedis objects, read from a real apiserver through each
//! phase of their life on the bed, are judged by kstatus (`status.Compute` from cli-utils, as Flux
//! and kubectl-wait-like tools do) and by the Argo CD health check `docs/argocd/health.lua` (run in
//! gopher-lua as Argo CD runs it): see `tests/kstatus` and `docs/argocd.md`.
//!
//! | phase | kstatus | Argo CD |
//! |---|---|---|
//! | (1) just applied, no operator has looked | InProgress | Progressing |
//! | (2) creating | InProgress | Progressing |
//! | (3) Ready | Current | Healthy |
//! | (4) spec edited, not yet observed | InProgress | Progressing |
//! | (5) update rolled back | Failed | Degraded |
//! | (6) create retries used up | Failed | Degraded |
//! | (7) deleting | Terminating | Progressing |
//! | (8) paused annotation | (its conditions) | Suspended |
//!
//! Every judgement on the bed also checks that neither kstatus says Current nor Argo CD Healthy
//! while Ready is not True for the current generation.

mod support;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use oms_data_operator::redis::OmsRedis;
use oms_data_operator::stack::plan::MAX_RECREATES;
use serde_json::{Value, json};
use std::time::Duration;
use support::controlplane;
use support::health::{self, Verdict, condition, condition_is, judge, ready_for_current_generation};
use support::operator::{self, Operator};
use support::world::World;
use support::{eventually, unique_name};

const WAIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Without the bed: hand-written objects, one per case, straight to the helper.

fn omsredis(generation: i64, metadata: Value, status: Value) -> Value {
    let mut o = json!({
        "apiVersion": "data.oms-spider.io/v1alpha1",
        "kind": "OmsRedis",
        "metadata": {
            "name": "cache", "namespace": "team-a", "generation": generation,
            "uid": "6f1c1f0e-0000-4000-8000-000000000001",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": { "environment": "dev", "vpcStackName": "oms-vpc-dev" },
    });
    if let (Some(m), Some(extra)) = (o["metadata"].as_object_mut(), metadata.as_object()) {
        m.extend(extra.clone());
    }
    if !status.is_null() {
        o["status"] = status;
    }
    o
}

/// A status as the operator writes it: the three conditions at `generation`, exactly one True.
fn status(generation: i64, health: &str, reason: &str, message: &str) -> Value {
    let cond = |type_: &str| {
        let on = type_ == health;
        json!({
            "type": type_,
            "status": if on { "True" } else { "False" },
            "reason": if on || type_ == "Ready" { reason.to_string() } else { format!("Not{type_}") },
            "message": if on || type_ == "Ready" { message } else { "" },
            "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        })
    };
    json!({
        "observedGeneration": generation,
        "conditions": [cond("Ready"), cond("Reconciling"), cond("Stalled")],
        "stackName": "cache",
        "stackStatus": "CREATE_COMPLETE",
    })
}

#[test]
fn each_case_reads_as_kstatus_and_the_argo_cd_check_should_say() {
    let creating = "CREATE_IN_PROGRESS: RedisReplicationGroup is being created";
    let rolled_back = "UPDATE_ROLLBACK_COMPLETE: RedisReplicationGroup: Insufficient capacity for cache.t4g.medium";
    let gave_up = "ROLLBACK_COMPLETE after 3 attempts: RedisReplicationGroup: Cache node type not available";
    let deleting = json!({ "deletionTimestamp": "2026-01-01T00:10:00Z", "finalizers": ["data.oms-spider.io/stack"] });
    let paused = json!({ "annotations": { health::PAUSED: "true" } });
    let mut stale_ready = status(2, "Ready", "StackReady", "ready");
    stale_ready["conditions"][0]["observedGeneration"] = json!(1);
    let mut ready_unknown = status(1, "Ready", "Unknown", "checking");
    ready_unknown["conditions"][0]["status"] = json!("Unknown");
    let mut paused_condition = status(1, "Ready", "StackReady", "ready");
    paused_condition["conditions"].as_array_mut().expect("conditions").push(json!({
        "type": "Paused", "status": "True", "reason": "Paused", "message": "paused by annotation",
        "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z",
    }));

    // (case, object, kstatus, Argo CD, a part of Argo CD's message)
    let cases: Vec<(&str, Value, &str, &str, &str)> = vec![
        (
            "(1) no status at all: kstatus cannot tell (why the CRD defaults observedGeneration)",
            omsredis(1, json!({}), Value::Null),
            "Current",
            "Progressing",
            "waiting for the operator to observe generation 1",
        ),
        (
            "(1) just applied, status defaulted to observedGeneration 0",
            omsredis(1, json!({}), json!({ "observedGeneration": 0 })),
            "InProgress",
            "Progressing",
            "waiting for the operator to observe generation 1",
        ),
        (
            "(2) creating",
            omsredis(1, json!({}), status(1, "Reconciling", "StackInProgress", creating)),
            "InProgress",
            "Progressing",
            creating,
        ),
        (
            "(3) Ready",
            omsredis(1, json!({}), status(1, "Ready", "StackReady", "stack CREATE_COMPLETE")),
            "Current",
            "Healthy",
            "stack CREATE_COMPLETE",
        ),
        (
            "(4) edited, not yet observed",
            omsredis(2, json!({}), status(1, "Ready", "StackReady", "stack CREATE_COMPLETE")),
            "InProgress",
            "Progressing",
            "waiting for the operator to observe generation 2",
        ),
        (
            "(5) update rolled back",
            omsredis(2, json!({}), status(2, "Stalled", "StackUpdateRolledBack", rolled_back)),
            "Failed",
            "Degraded",
            "Insufficient capacity",
        ),
        (
            "(5) rolled back, then edited again and not yet observed",
            omsredis(3, json!({}), status(2, "Stalled", "StackUpdateRolledBack", rolled_back)),
            "InProgress",
            "Progressing",
            "waiting for the operator to observe generation 3",
        ),
        (
            "(6) create retries used up",
            omsredis(1, json!({}), status(1, "Stalled", "StackCreateFailed", gave_up)),
            "Failed",
            "Degraded",
            "after 3 attempts",
        ),
        (
            "(7) deleting",
            omsredis(1, deleting, status(1, "Reconciling", "StackDeleting", "DELETE_IN_PROGRESS")),
            "Terminating",
            "Progressing",
            "being deleted: DELETE_IN_PROGRESS",
        ),
        (
            "(8) paused",
            omsredis(1, paused.clone(), status(1, "Ready", "StackReady", "ready")),
            "Current",
            "Suspended",
            "paused",
        ),
        (
            "(8) paused, with the operator's Paused condition",
            omsredis(1, paused, paused_condition),
            "Current",
            "Suspended",
            "paused",
        ),
        (
            "(8) paused annotation other than \"true\"",
            omsredis(
                1,
                json!({ "annotations": { health::PAUSED: "false" } }),
                status(1, "Ready", "StackReady", "ready"),
            ),
            "Current",
            "Healthy",
            "ready",
        ),
        ("Ready Unknown", omsredis(1, json!({}), ready_unknown), "InProgress", "Progressing", "checking"),
        (
            "Ready True for an older generation: kstatus ignores a condition's observedGeneration",
            omsredis(2, json!({}), stale_ready),
            "Current",
            "Progressing",
            "waiting for the operator to observe generation 2",
        ),
        (
            "empty status",
            omsredis(1, json!({}), json!({ "conditions": [] })),
            "Current",
            "Progressing",
            "waiting for the operator to observe generation 1",
        ),
    ];
    let mut wrong = Vec::new();
    for (case, obj, kstatus, argo, message) in &cases {
        let v = judge(obj);
        eprintln!("health table: {case:<90} {v}");
        if v.kstatus != *kstatus || v.argo != *argo || !v.argo_message.contains(message) {
            wrong.push(format!("{case}: want kstatus {kstatus}, Argo CD {argo} ({message:?}); got {v}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_argocd_doc_carries_health_lua_verbatim() {
    let root = support::proc::repo_root();
    let script = std::fs::read_to_string(root.join(health::SCRIPT)).expect("docs/argocd/health.lua");
    let doc_path = root.join(health::DOC);
    let doc = std::fs::read_to_string(&doc_path).expect("docs/argocd.md");
    let want = health::argocd_cm_snippet(&script);
    let got = health::snippet_in(&doc).expect("docs/argocd.md has the argocd-cm snippet markers");
    if got != want {
        if std::env::var("OMS_WRITE_DOCS").as_deref() == Ok("1") {
            std::fs::write(&doc_path, doc.replacen(got, &want, 1)).expect("rewrite docs/argocd.md");
            return;
        }
        panic!(
            "the argocd-cm snippet in docs/argocd.md is not docs/argocd/health.lua; \
             rewrite it with: OMS_WRITE_DOCS=1 cargo test --test bed_health the_argocd_doc\n\
             --- want ---\n{want}--- got ---\n{got}"
        );
    }
    // Pasted into argocd-cm, the key carries the script byte for byte.
    let yaml = got.strip_prefix("```yaml\n").and_then(|s| s.strip_suffix("```\n")).expect("a yaml fence");
    let parsed: Value = serde_saphyr::from_str(yaml).expect("the snippet is YAML");
    assert_eq!(parsed["data"][health::ARGOCD_CM_KEY].as_str(), Some(script.as_str()));
}

// ---------------------------------------------------------------------------------------------
// On the bed.

/// One test's world (namespace, VPC stack and, unless stopped, operator) and the judging of its
/// objects.
struct Bed(World);

impl std::ops::Deref for Bed {
    type Target = World;
    fn deref(&self) -> &World {
        &self.0
    }
}

impl std::ops::DerefMut for Bed {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.0
    }
}

impl Bed {
    async fn new(prefix: &str) -> Bed {
        Bed(World::new(prefix).await)
    }

    async fn create(&self, name: &str) {
        create(&self.api, name, &self.vpc).await;
    }

    async fn patch(&self, name: &str, body: Value) {
        self.api.patch(name, &PatchParams::default(), &Patch::Merge(body)).await.expect("patch the OmsRedis");
    }

    /// The object as the apiserver serves it, judged; the judgement must be honest.
    async fn look(&self, name: &str, phase: &str) -> (Value, Verdict) {
        let obj = health::get_raw(&self.client, &self.ns, name).await.unwrap_or_else(|| panic!("{name} exists"));
        let v = judge_honestly(&obj, phase);
        (obj, v)
    }

    /// Judges the object every 200 ms (each judgement must be honest) until `want` holds.
    async fn until(&self, name: &str, phase: &str, want: impl Fn(&Value) -> bool) -> (Value, Verdict) {
        eventually(phase, WAIT, || async {
            let obj = health::get_raw(&self.client, &self.ns, name).await?;
            let v = judge_honestly(&obj, phase);
            want(&obj).then_some((obj, v))
        })
        .await
    }

    async fn ready(&self, name: &str, phase: &str) -> Verdict {
        let (obj, v) = self.until(name, phase, ready_for_current_generation).await;
        expect(phase, &obj, &v, "Current", "Healthy");
        v
    }
}

async fn create(api: &Api<OmsRedis>, name: &str, vpc: &str) {
    let o: OmsRedis = serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1",
        "kind": "OmsRedis",
        "metadata": { "name": name },
        "spec": { "environment": "dev", "vpcStackName": vpc },
    }))
    .expect("a valid OmsRedis");
    api.create(&PostParams::default(), &o).await.expect("create the OmsRedis");
}

/// Judges `obj` and checks the rule for every phase: Argo CD never says Healthy, nor kstatus
/// Current, while Ready is not True for the current generation. An object without any status
/// (before the CRD defaults one) is phase (1)'s to judge for kstatus.
fn judge_honestly(obj: &Value, phase: &str) -> Verdict {
    let v = judge(obj);
    let honest = ready_for_current_generation(obj);
    assert!(v.argo != "Healthy" || honest, "{phase}: Argo CD says Healthy too early: {v}\n{obj:#}");
    if obj.get("status").is_some() {
        assert!(
            v.kstatus != "Current" || honest,
            "{phase}: kstatus says Current but Ready is not True for generation {}: {v}\n{obj:#}",
            obj["metadata"]["generation"]
        );
    }
    v
}

/// Prints the phase's judgement (for the phase table) and checks it.
fn expect(phase: &str, obj: &Value, v: &Verdict, kstatus: &str, argo: &str) {
    let trues: Vec<&str> = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter(|c| c["status"] == "True").filter_map(|c| c["type"].as_str()).collect())
        .unwrap_or_default();
    eprintln!(
        "health phase {phase:<36} generation {} observed {} True: {trues:?}: {v}",
        obj["metadata"]["generation"],
        obj.pointer("/status/observedGeneration").unwrap_or(&Value::Null)
    );
    assert_eq!((v.kstatus.as_str(), v.argo.as_str()), (kstatus, argo), "{phase}: {v}");
}

fn stalled(o: &Value, reason: &str) -> bool {
    condition(o, "Stalled").is_some_and(|c| c["status"] == "True" && c["reason"] == reason)
}

fn observed(o: &Value) -> bool {
    o.pointer("/status/observedGeneration") == Some(&o["metadata"]["generation"])
}

#[tokio::test]
async fn phase_1_just_applied_reads_in_progress_before_any_operator_looks() {
    let cp = controlplane::shared();
    let client = cp.client().await;
    operator::install_crds(&client).await;
    // No operator watches this namespace.
    let ns = controlplane::test_namespace(&client, "h-fresh").await;
    let api: Api<OmsRedis> = Api::namespaced(client.clone(), &ns);
    let name = unique_name("oms-redis-hfresh");
    create(&api, &name, "oms-vpc-nowhere").await;
    let obj = health::get_raw(&client, &ns, &name).await.expect("the OmsRedis");
    let v = judge(&obj);
    eprintln!("health phase {:<36} {v}", "(1) just applied");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let served = crds.get("omsredises.data.oms-spider.io").await.expect("the OmsRedis CRD");
    let status_default = served
        .spec
        .versions
        .iter()
        .filter_map(|v| {
            v.schema.as_ref()?.open_api_v3_schema.as_ref()?.properties.as_ref()?.get("status")?.default.clone()
        })
        .map(|d| d.0.to_string())
        .next()
        .unwrap_or_else(|| "none".into());
    assert_eq!(v.argo, "Progressing", "{v}");
    assert_eq!(v.argo_message, "waiting for the operator to observe generation 1");
    assert_eq!(
        v.kstatus,
        "InProgress",
        "a just-applied OmsRedis must not read as Current before the operator has looked; it was \
         served with status {} (the CRD's default for status: {status_default}): the CRD must \
         default status.observedGeneration to 0",
        obj.get("status").map(Value::to_string).unwrap_or_else(|| "absent".into())
    );
}

#[tokio::test]
async fn phases_2_3_7_creating_ready_and_deleting() {
    let b = Bed::new("h-life").await;
    let name = unique_name("oms-redis-hlife");
    // Slow create and delete: each takes 4 s on the emulator.
    b.emu.configure(json!({ "stack_delays": { name.clone(): 4.0 } }));
    b.create(&name).await;

    let (obj, v) = b.until(&name, "(2) creating", |o| observed(o) && condition_is(o, "Reconciling", "True")).await;
    expect("(2) creating", &obj, &v, "InProgress", "Progressing");
    assert!(!v.argo_message.is_empty() && !v.argo_message.starts_with("waiting"), "the operator's word: {v}");

    b.ready(&name, "(3) Ready").await;

    b.api.delete(&name, &DeleteParams::default()).await.expect("delete");
    let (obj, v) = b.until(&name, "(7) deleting", |o| !o["metadata"]["deletionTimestamp"].is_null()).await;
    expect("(7) deleting", &obj, &v, "Terminating", "Progressing");
    assert!(v.argo_message.starts_with("being deleted"), "{v}");
    // Until it is gone, every look says the same.
    let looks = std::sync::atomic::AtomicUsize::new(1);
    eventually("the OmsRedis to be deleted", WAIT, || async {
        let Some(obj) = health::get_raw(&b.client, &b.ns, &name).await else {
            return Some(());
        };
        let v = judge_honestly(&obj, "(7) deleting");
        assert_eq!((v.kstatus.as_str(), v.argo.as_str()), ("Terminating", "Progressing"), "{v}");
        looks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        None
    })
    .await;
    let looks = looks.into_inner();
    assert!(looks >= 5, "the delete takes 4 s, so it is seen in progress ({looks} looks)");
}

#[tokio::test]
async fn phase_4_an_edit_the_operator_has_not_seen_is_in_progress() {
    let mut b = Bed::new("h-edit").await;
    let name = unique_name("oms-redis-hedit");
    b.create(&name).await;
    b.ready(&name, "(3) Ready").await;

    b.operator.take().expect("the operator").stop().await;
    b.patch(&name, json!({ "spec": { "nodeType": "cache.t4g.small" } })).await;
    let (obj, v) = b.look(&name, "(4) edited, not yet observed").await;
    assert_eq!(obj["metadata"]["generation"], 2);
    assert_eq!(obj["status"]["observedGeneration"], 1);
    expect("(4) edited, not yet observed", &obj, &v, "InProgress", "Progressing");
    assert_eq!(v.argo_message, "waiting for the operator to observe generation 2");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, later) = b.look(&name, "(4) edited, not yet observed").await;
    assert_eq!(later, v, "nothing moves without the operator");

    // The operator comes back and catches up.
    b.operator = Some(Operator::start(b.cp, b.emu, &b.ns).await);
    b.ready(&name, "(4) then caught up: Ready").await;
}

#[tokio::test]
async fn phase_5_a_rolled_back_update_is_failed_and_degraded() {
    let b = Bed::new("h-ufail").await;
    let name = unique_name("oms-redis-hufail");
    b.create(&name).await;
    b.ready(&name, "(3) Ready").await;

    let reason = "Insufficient capacity for cache.t4g.small";
    b.emu.fail_next(&name, "update", "RedisReplicationGroup", reason);
    b.patch(&name, json!({ "spec": { "nodeType": "cache.t4g.small" } })).await;
    let (obj, v) =
        b.until(&name, "(5) update rolled back", |o| observed(o) && stalled(o, "StackUpdateRolledBack")).await;
    expect("(5) update rolled back", &obj, &v, "Failed", "Degraded");
    assert!(v.argo_message.contains(reason), "Argo CD shows why: {v}");
}

#[tokio::test]
async fn phase_6_create_retries_used_up_are_failed_and_degraded() {
    let b = Bed::new("h-cfail").await;
    let name = unique_name("oms-redis-hcfail");
    let reason = "Cache node type cache.t4g.micro is not available in us-east-1a";
    // The first create and every recreate fail.
    let attempts = MAX_RECREATES + 1;
    b.emu.control(
        "POST",
        "/_oms/fail",
        Some(json!({
            "stack_name": name, "operation": "create", "resource": "RedisReplicationGroup",
            "reason": reason, "times": attempts,
        })),
    );
    b.create(&name).await;
    let (obj, v) =
        b.until(&name, "(6) create retries used up", |o| observed(o) && stalled(o, "StackCreateFailed")).await;
    expect("(6) create retries used up", &obj, &v, "Failed", "Degraded");
    assert!(v.argo_message.contains(reason), "Argo CD shows why: {v}");
    let creates = b.emu.calls(Some(&name)).get("cloudformation:CreateStack").copied().unwrap_or(0);
    assert_eq!(creates, u64::try_from(attempts).expect("a count"), "a create and {MAX_RECREATES} recreates");
}

#[tokio::test]
async fn phase_8_a_paused_resource_is_suspended() {
    let b = Bed::new("h-pause").await;
    let name = unique_name("oms-redis-hpause");
    b.create(&name).await;
    b.ready(&name, "(3) Ready").await;

    b.patch(&name, json!({ "metadata": { "annotations": { health::PAUSED: "true" } } })).await;
    // Right away, and while the operator takes note (for 3 s), Argo CD says Suspended.
    for _ in 0..10 {
        let (_, v) = b.look(&name, "(8) paused").await;
        assert_eq!(v.argo, "Suspended", "{v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (obj, v) = b.look(&name, "(8) paused").await;
    expect("(8) paused", &obj, &v, &v.kstatus, "Suspended");

    b.patch(&name, json!({ "metadata": { "annotations": { health::PAUSED: null } } })).await;
    let (obj, v) = b
        .until(&name, "(8) unpaused", |o| {
            o["metadata"]["annotations"][health::PAUSED].is_null() && ready_for_current_generation(o)
        })
        .await;
    expect("(8) unpaused: Ready", &obj, &v, "Current", "Healthy");
}

/// The second kind, through the same checks: a table reads in progress until the operator has seen
/// it and its stack is made, Current and Healthy once Ready, and Failed and Degraded when an update
/// rolled back.
#[tokio::test]
async fn a_table_reads_in_progress_then_current_then_degraded_when_an_update_rolls_back() {
    use oms_data_operator::dynamo::OmsDynamoTable;
    let w = World::new("h-table").await;
    let api: Api<OmsDynamoTable> = Api::namespaced(w.client.clone(), &w.ns);
    let name = unique_name("oms-dynamodb-health");
    w.emu.configure(json!({ "stack_delays": { name.clone(): 3.0 } }));
    let table: OmsDynamoTable = serde_json::from_value(json!({
        "apiVersion": "data.oms-spider.io/v1alpha1", "kind": "OmsDynamoTable",
        "metadata": { "name": name },
        "spec": { "environment": "dev", "partitionKey": { "name": "id", "type": "String" } },
    }))
    .expect("a valid OmsDynamoTable");
    api.create(&PostParams::default(), &table).await.expect("create");
    let look = |phase: &'static str, done: fn(&Value) -> bool| {
        let (client, ns, name) = (w.client.clone(), w.ns.clone(), name.clone());
        async move {
            eventually(phase, WAIT, || async {
                let obj = health::get_raw_of::<OmsDynamoTable>(&client, &ns, &name).await?;
                let v = judge_honestly(&obj, phase);
                done(&obj).then_some((obj, v))
            })
            .await
        }
    };
    let (obj, v) = look("table creating", |o| observed(o) && condition_is(o, "Reconciling", "True")).await;
    expect("table creating", &obj, &v, "InProgress", "Progressing");
    let (obj, v) = look("table Ready", ready_for_current_generation).await;
    expect("table Ready", &obj, &v, "Current", "Healthy");
    w.emu.fail_next(&name, "update", "Table", "Subscriber limit exceeded");
    api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "timeToLiveAttribute": "ttl" } })))
        .await
        .expect("patch");
    let (obj, v) = look("table update rolled back", |o| stalled(o, "StackUpdateRolledBack")).await;
    expect("table update rolled back", &obj, &v, "Failed", "Degraded");
    assert!(v.argo_message.contains("Subscriber limit exceeded"), "{v}");
}
