//! Redis AUTH over TLS on the bed, against a real redis-server that speaks only TLS and whose
//! passwords the emulator keeps in step with the replication group's AUTH tokens: a prod cache gets
//! a password the operator generated; a rotation keeps clients with the old password working until
//! SET, with the Secret changing in between; turning AUTH on for a running cache locks nobody out
//! before the grace period; and the password is never in status, Events, logs, metrics or the stack.

mod support;

use k8s_openapi::api::core::v1::{Event as CoreEvent, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use oms_data_operator::redis::OmsRedis;
use serde_json::json;
use std::collections::BTreeMap;
use support::operator::{OperatorProcess, ProcessOptions};
use support::redis::TlsRedis;
use support::world::{WAIT, World, condition, secret_data as data, stack};
use support::{eventually, unique_name};

const ROTATE: &str = "data.oms-spider.io/rotate-auth-token";
const CONTENT_HASH: &str = "oms-data-operator/content-hash";

fn hash(s: &Secret) -> String {
    s.metadata.annotations.as_ref().and_then(|a| a.get(CONTENT_HASH)).cloned().unwrap_or_default()
}

/// The world with the operator binary as its own process, logging at debug level to a file, so the
/// test can read every line it wrote.
async fn world_with_logged_operator(prefix: &str) -> (World, OperatorProcess, std::path::PathBuf) {
    let mut w = World::new(prefix).await;
    w.operator.take().expect("operator").stop().await;
    let (op, log) = logged_operator(&w, prefix);
    (w, op, log)
}

/// The operator binary for the world's namespace, logging at debug level to a file of its own.
fn logged_operator(w: &World, prefix: &str) -> (OperatorProcess, std::path::PathBuf) {
    let log = std::env::temp_dir().join(format!("{}-operator.log", unique_name(prefix)));
    let op = OperatorProcess::spawn(
        w.emu,
        ProcessOptions {
            kubeconfig: &w.cp.kubeconfig,
            access_key: prefix,
            args: vec![
                format!("--namespaces={}", w.ns),
                "--poll-interval=0.3".into(),
                "--max-poll-interval=1".into(),
                "--log-level=debug".into(),
            ],
            log: Some(log.clone()),
            pod_name: None,
            env: &[],
        },
    );
    (op, log)
}

async fn secret(w: &World, name: &str) -> Secret {
    w.secret(name).await.unwrap_or_else(|| panic!("Secret {name}"))
}

/// Everything a password must never be in: status, Events, the operator's log and metrics, and
/// what CloudFormation shows of the stack.
async fn assert_never_shown(
    w: &World,
    op: &OperatorProcess,
    logs: &[&std::path::Path],
    name: &str,
    passwords: &[String],
) {
    let status = serde_json::to_string(&w.get(name).await.status).expect("status");
    let events: Vec<String> = Api::<CoreEvent>::namespaced(w.client.clone(), &w.ns)
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .map(|e| format!("{} {}", e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect();
    let logged: String = logs.iter().map(|l| std::fs::read_to_string(l).expect("the operator's log")).collect();
    let (_, metrics) = op.get("/metrics");
    let s = stack(w.emu, name).await.expect("the stack");
    let shown = format!("{:?} {:?}", s.parameters(), s.outputs());
    assert!(
        s.parameters().iter().any(|p| p.parameter_key() == Some("AuthToken") && p.parameter_value() == Some("****"))
    );
    assert!(logged.lines().count() > 5, "the log has lines to search");
    for pw in passwords {
        for (what, text) in [
            ("status", &status),
            ("events", &events.join("\n")),
            ("log", &logged),
            ("metrics", &metrics),
            ("stack", &shown),
        ] {
            assert!(!text.contains(pw.as_str()), "a password is in the {what}");
        }
    }
}

#[tokio::test]
async fn a_prod_cache_requires_its_password_over_tls_and_rotates_it_without_downtime() {
    let tls = TlsRedis::start().expect("a TLS redis-server");
    let (w, first, first_log) = world_with_logged_operator("auth").await;
    let name = unique_name("oms-redis-auth");
    w.emu.bind_redis(&name, &tls);
    // AUTH is omitted: a new prod cache gets it by default.
    w.create(&name, "prod", json!({ "auth": { "reloadGraceSeconds": 10 } })).await;
    let ready = w.ready(&name).await;
    let auth = ready.status.as_ref().and_then(|s| s.stack.auth.clone()).expect("status.auth");
    assert!(auth.enabled);
    let auth_secret = auth.secret_name.clone().expect("the password Secret's name");
    assert_eq!(auth_secret, format!("{name}-redis-auth"));

    let conn = secret(&w, &format!("{name}-redis")).await;
    let d = data(&conn);
    let old = d["REDIS_PASSWORD"].clone();
    assert_eq!(old.len(), 64);
    assert_eq!(d["REDIS_TLS"], "true");
    assert_eq!(d["REDIS_URL"], format!("rediss://:{old}@{}:{}", d["REDIS_HOST"], d["REDIS_PORT"]));
    assert_eq!(data(&secret(&w, &auth_secret).await)["token"], old);
    // A real TLS PING with the Secret's values.
    assert_eq!(tls.ping(Some(&old)), "PONG");
    assert!(tls.ping(None).contains("NOAUTH"), "no password is refused: {}", tls.ping(None));
    assert!(tls.ping(Some("not-the-password-at-all")).contains("WRONGPASS"));

    // Rotate: the old password keeps working until SET, and the Secret changes in between.
    w.api
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "annotations": { ROTATE: "1" } } })))
        .await
        .expect("annotate");
    // The operator is killed as the rotation starts and another one finishes it: ElastiCache's own
    // record of the token decides what is sent, so nothing is sent twice.
    eventually("the rotation to start", WAIT, || async {
        let a = w.get(&name).await.status?.stack.auth?;
        a.rotation.is_some().then_some(())
    })
    .await;
    drop(first);
    let (op, log) = logged_operator(&w, "auth");
    let reloading = eventually("the new password in the connection Secret", WAIT, || async {
        let s = w.secret(&format!("{name}-redis")).await?;
        (data(&s)["REDIS_PASSWORD"] != old).then_some(s)
    })
    .await;
    let new = data(&reloading)["REDIS_PASSWORD"].clone();
    assert_ne!(hash(&reloading), hash(&conn), "the content hash changes, so reloaders restart workloads");
    assert_eq!(tls.ping(Some(&old)), "PONG", "the old password works during the grace period");
    assert_eq!(tls.ping(Some(&new)), "PONG");
    let o = w.get(&name).await;
    let during = o.status.as_ref().and_then(|s| s.stack.auth.clone()).expect("status.auth");
    assert_eq!(during.rotation.map(|r| format!("{r:?}")).as_deref(), Some("Reloading"));
    assert_eq!(during.last_handled_rotate_request.as_deref(), Some("1"));
    assert_eq!(condition(&o, "Reconciling").map(|c| c.reason.clone()).as_deref(), Some("AuthTokenRotating"));

    let done = eventually("the rotation to finish", WAIT, || async {
        let o = w.get(&name).await;
        let a = o.status.as_ref()?.stack.auth.clone()?;
        (a.rotation.is_none() && a.last_rotated_at.is_some()).then_some(o)
    })
    .await;
    assert_eq!(condition(&done, "Ready").map(|c| c.status.clone()).as_deref(), Some("True"));
    assert!(tls.ping(Some(&old)).contains("WRONGPASS"), "after SET the old password is refused");
    assert_eq!(tls.ping(Some(&new)), "PONG");
    assert_eq!(data(&secret(&w, &auth_secret).await), BTreeMap::from([("token".to_string(), new.clone())]));
    for reason in ["AuthTokenRotating", "AuthTokenPublished", "AuthTokenRotated"] {
        w.event_note(reason).await;
    }
    // One ROTATE and one SET, and the stack was never updated for it.
    assert_eq!(w.count(&name, "cloudformation:ExecuteChangeSet"), 0);
    // The operator's password Secret deleted: written again from the connection Secret's copy, with
    // no rotation under the running clients.
    let changes = w.count(&name, "elasticache:ModifyReplicationGroup");
    assert_eq!(changes, 2, "one ROTATE and one SET");
    Api::<Secret>::namespaced(w.client.clone(), &w.ns).delete(&auth_secret, &Default::default()).await.expect("delete");
    let restored = eventually("the password Secret written again", WAIT, || async {
        w.secret(&auth_secret).await.map(|s| data(&s))
    })
    .await;
    assert_eq!(restored, BTreeMap::from([("token".to_string(), new.clone())]));
    w.event_note("AuthSecretRestored").await;
    assert_eq!(tls.ping(Some(&new)), "PONG");
    assert_eq!(w.count(&name, "elasticache:ModifyReplicationGroup"), changes, "no rotation");
    assert_never_shown(&w, &op, &[&first_log, &log], &name, &[old, new]).await;
}

#[tokio::test]
async fn turning_auth_on_for_a_running_cache_locks_nobody_out_before_the_grace_period() {
    let tls = TlsRedis::start().expect("a TLS redis-server");
    let (w, op, log) = world_with_logged_operator("authon").await;
    let name = unique_name("oms-redis-authon");
    w.emu.bind_redis(&name, &tls);
    w.create(&name, "prod", json!({ "auth": { "enabled": false } })).await;
    let ready = w.ready(&name).await;
    assert!(ready.status.as_ref().and_then(|s| s.stack.auth.clone()).is_none_or(|a| !a.enabled));
    let d = data(&secret(&w, &format!("{name}-redis")).await);
    assert!(!d.contains_key("REDIS_PASSWORD"));
    assert_eq!(tls.ping(None), "PONG");

    w.patch_spec(&name, json!({ "auth": { "enabled": true, "reloadGraceSeconds": 10 } })).await;
    let published = eventually("a password in the connection Secret", WAIT, || async {
        let s = w.secret(&format!("{name}-redis")).await?;
        data(&s).get("REDIS_PASSWORD").cloned()
    })
    .await;
    assert_eq!(tls.ping(None), "PONG", "clients without the password still get in during the grace period");
    assert_eq!(tls.ping(Some(&published)), "PONG");
    let done = eventually("AUTH to be on", WAIT, || async {
        let o = w.get(&name).await;
        let a = o.status.as_ref()?.stack.auth.clone()?;
        (a.enabled && a.rotation.is_none()).then_some(o)
    })
    .await;
    assert_eq!(condition(&done, "Ready").map(|c| c.status.clone()).as_deref(), Some("True"));
    assert!(tls.ping(None).contains("NOAUTH"), "then only the password gets in: {}", tls.ping(None));
    assert_eq!(tls.ping(Some(&published)), "PONG");
    assert_never_shown(&w, &op, &[&log], &name, &[published]).await;

    // Once on, AUTH cannot be turned off.
    let off = w
        .api
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "auth": { "enabled": false } } })))
        .await
        .expect_err("turning AUTH off is refused");
    assert!(off.to_string().contains("cannot be turned off"), "{off}");
}

#[tokio::test]
async fn auth_outside_prod_is_refused_at_apply_time() {
    let w = World::new("authdev").await;
    let name = unique_name("oms-redis-authdev");
    let err = w
        .api
        .create(&Default::default(), &w.manifest(&name, "dev", json!({ "auth": { "enabled": true } })))
        .await
        .expect_err("AUTH in dev is refused");
    assert!(err.to_string().contains("only environment prod has"), "{err}");
    let _: Option<OmsRedis> = w.api.get_opt(&name).await.expect("get");
}

/// Under deletion policy Retain the cache outlives the resource, and so must its password: both
/// Secrets stay, without owner references, so the garbage collector leaves them.
#[tokio::test]
async fn a_retained_cache_keeps_its_password() {
    let w = World::new("authkeep").await;
    let name = unique_name("oms-redis-authkeep");
    w.create(&name, "prod", json!({ "deletionPolicy": "Retain" })).await;
    w.ready(&name).await;
    let auth_secret = format!("{name}-redis-auth");
    let token = data(&secret(&w, &auth_secret).await)["token"].clone();
    w.api.delete(&name, &Default::default()).await.expect("delete");
    w.gone(&name).await;
    for s in [auth_secret.clone(), format!("{name}-redis")] {
        let kept = secret(&w, &s).await;
        assert!(kept.metadata.owner_references.unwrap_or_default().is_empty(), "{s} is released");
    }
    assert_eq!(data(&secret(&w, &auth_secret).await)["token"], token);
    assert!(stack(w.emu, &name).await.is_some(), "the stack is kept");
}
