//! The test bed's control plane is real: CEL rules are enforced at apply time, the garbage
//! collector removes dependents, namespaces really go away, and a bed that cannot start says why.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use std::time::Duration;
use support::controlplane::{self, ControlPlane, Options};
use support::{eventually, unique_name};

fn object<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a well-formed object")
}

#[tokio::test]
async fn cel_rule_rejects_a_violating_object_with_the_rules_message() {
    let client = controlplane::shared().client().await;
    let ns = controlplane::test_namespace(&client, "cel").await;
    // CRDs are cluster-wide: a group of this test's own keeps it apart from any other.
    let group = format!("{}.bed.oms-spider.io", unique_name("g"));
    let crd: CustomResourceDefinition = object(json!({
        "metadata": { "name": format!("widgets.{group}") },
        "spec": {
            "group": group,
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object",
                        "properties": { "replicas": { "type": "integer" } },
                        "x-kubernetes-validations": [{
                            "rule": "self.replicas <= 5",
                            "message": "replicas must be at most 5"
                        }]
                    }}
                }}
            }]
        }
    }));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.expect("create the CRD");
    let name = format!("widgets.{group}");
    eventually("the CRD to be established", Duration::from_secs(30), || async {
        let c = crds.get(&name).await.ok()?;
        let established = c.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True");
        established.then_some(())
    })
    .await;

    let gvk = GroupVersionKind::gvk(&group, "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let make = |name: &str, replicas: i64| -> DynamicObject {
        let mut o = DynamicObject::new(name, &ar);
        o.data = json!({ "spec": { "replicas": replicas } });
        o
    };
    // The kind may take a moment to be served after Established; a good object proves it is.
    eventually("the good widget to be accepted", Duration::from_secs(30), || async {
        widgets.create(&PostParams::default(), &make("good", 3)).await.ok()
    })
    .await;

    let rejected =
        widgets.create(&PostParams::default(), &make("bad", 9)).await.expect_err("replicas 9 violates the CEL rule");
    match rejected {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(status.message.contains("replicas must be at most 5"), "{}", status.message);
        }
        other => panic!("expected an API error, got {other}"),
    }
    crds.delete(&name, &DeleteParams::default()).await.expect("delete the CRD");
}

#[tokio::test]
async fn garbage_collector_removes_a_deleted_owners_dependent() {
    let client = controlplane::shared().client().await;
    let ns = controlplane::test_namespace(&client, "gc").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner = cms
        .create(&PostParams::default(), &object(json!({ "metadata": { "name": "owner" } })))
        .await
        .expect("create the owner");
    let uid = owner.metadata.uid.expect("the owner has a uid");
    cms.create(
        &PostParams::default(),
        &object(json!({ "metadata": { "name": "dependent", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid
        }]}})),
    )
    .await
    .expect("create the dependent");

    cms.delete("owner", &DeleteParams::background()).await.expect("delete the owner");
    eventually("the garbage collector to remove the dependent", Duration::from_secs(60), || async {
        matches!(cms.get_opt("dependent").await, Ok(None)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn namespace_deletion_completes() {
    let client = controlplane::shared().client().await;
    let ns = controlplane::test_namespace(&client, "nsdel").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    cms.create(&PostParams::default(), &object(json!({ "metadata": { "name": "content" } })))
        .await
        .expect("create content");
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.delete(&ns, &DeleteParams::default()).await.expect("delete the namespace");
    eventually("the namespace controller to finish deleting it", Duration::from_secs(60), || async {
        matches!(nss.get_opt(&ns).await, Ok(None)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn tests_get_namespaces_of_their_own() {
    let client = controlplane::shared().client().await;
    let a = controlplane::test_namespace(&client, "own").await;
    let b = controlplane::test_namespace(&client, "own").await;
    assert_ne!(a, b);
    let nss: Api<Namespace> = Api::all(client);
    for ns in [a, b] {
        assert!(nss.get_opt(&ns).await.expect("get namespace").is_some(), "{ns} exists");
    }
}

#[test]
fn a_taken_port_fails_fast_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let started = std::time::Instant::now();
    let error = ControlPlane::start(Options { apiserver_port: Some(port), ..Options::default() })
        .err()
        .expect("the start must fail");
    assert!(
        error.0.contains(&format!("port 127.0.0.1:{port} is already in use")) && error.0.contains("kube-apiserver"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "fails fast");
}

#[test]
fn a_binary_that_does_not_start_reports_its_last_log_lines() {
    let assets = tempfile::tempdir().expect("tempdir");
    let fake = "#!/bin/sh\necho \"starting $0\"\necho 'fatal: data dir is corrupt' >&2\nexit 3\n";
    for bin in ["etcd", "kube-apiserver", "kube-controller-manager"] {
        let p = assets.path().join(bin);
        std::fs::write(&p, fake).expect("write");
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    let error = ControlPlane::start(Options { assets: Some(assets.path().to_path_buf()), ..Options::default() })
        .err()
        .expect("the start must fail");
    assert!(error.0.contains("etcd exited"), "{error}");
    assert!(error.0.contains("fatal: data dir is corrupt"), "names the log's last lines: {error}");
    assert!(!error.0.contains("already in use"), "the binary's own failure, not a port: {error}");

    let missing = tempfile::tempdir().expect("tempdir");
    let error = ControlPlane::start(Options { assets: Some(missing.path().to_path_buf()), ..Options::default() })
        .err()
        .expect("the start must fail");
    assert!(error.0.contains("etcd does not start"), "{error}");
}

#[test]
fn missing_go_is_reported_by_the_build_script() {
    let empty_cache = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new("bash")
        .arg(support::proc::repo_root().join("tests/controlplane/build.sh"))
        .env_remove("KUBEBUILDER_ASSETS")
        .env("OMS_CACHE_DIR", empty_cache.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run build.sh");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Go is not installed"), "{stderr}");
}

/// A KUBEBUILDER_ASSETS folder holding do-nothing executables of these names.
fn fake_assets(bins: &[&str]) -> tempfile::TempDir {
    let assets = tempfile::tempdir().expect("tempdir");
    for bin in bins {
        let p = assets.path().join(bin);
        std::fs::write(&p, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    assets
}

#[test]
fn kubebuilder_assets_without_a_binary_is_refused_naming_it() {
    let assets = fake_assets(&["etcd", "kube-apiserver"]);
    let out = std::process::Command::new("bash")
        .arg(support::proc::repo_root().join("tests/controlplane/build.sh"))
        .env("KUBEBUILDER_ASSETS", assets.path())
        .output()
        .expect("run build.sh");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has no executable kube-controller-manager"), "{stderr}");
}

#[test]
fn kubebuilder_assets_is_used_without_building() {
    let assets = fake_assets(&["etcd", "kube-apiserver", "kube-controller-manager"]);
    let out = std::process::Command::new("bash")
        .arg(support::proc::repo_root().join("tests/controlplane/build.sh"))
        .env("KUBEBUILDER_ASSETS", assets.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run build.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), assets.path().to_string_lossy());
}

/// `kubectl version` (and so `helm install`, which checks the chart's kubeVersion) needs the
/// apiserver to report a release version: the build stamps the pinned one, as Kubernetes' own does.
#[test]
fn kubectl_version_reports_the_pinned_kubernetes_release() {
    let cp = controlplane::shared();
    let want = controlplane::pinned_kubernetes_version();
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cp.kubeconfig)
        .args(["version", "-o", "json"])
        .output()
        .expect("run kubectl (`make demo-tools` installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl version exited {}:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("kubectl version -o json prints JSON");
    let server = &v["serverVersion"];
    assert_eq!(server["gitVersion"], want.as_str(), "{server}");
    let mut parts = want.trim_start_matches('v').split('.');
    assert_eq!(server["major"], parts.next().unwrap_or_default(), "{server}");
    assert_eq!(server["minor"], parts.next().unwrap_or_default(), "{server}");
    assert_eq!(server["gitTreeState"], "clean", "{server}");
}

/// Two builders of the same pinned module at once (two clones' first `make test` on one machine)
/// both succeed and print the same, complete folder; the stamp in GOBUILD_LDFLAGS is linked in.
#[test]
fn two_gobuild_runs_at_once_both_get_the_same_complete_build() {
    if std::process::Command::new("go").arg("version").output().is_err() {
        eprintln!("SKIPPED: no `go` on PATH; gobuild.sh cannot build without it");
        return;
    }
    let root = support::proc::repo_root();
    let cache = tempfile::tempdir().expect("tempdir");
    let names = ["first", "second", "third"];
    let run = || {
        std::process::Command::new("bash")
            .arg(root.join("tests/gobuild.sh"))
            .arg(root.join("tests/gobuild-selftest"))
            .args(names.map(|n| format!("{n}=.")))
            .env("OMS_CACHE_DIR", cache.path())
            .env("GOBUILD_LDFLAGS", "-X main.stamp=selftest-stamp")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run gobuild.sh")
    };
    let builders = [run(), run(), run()];
    let mut dirs = Vec::new();
    for b in builders {
        let out = b.wait_with_output().expect("wait for gobuild.sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a builder failed ({}):\n{stderr}", out.status);
        dirs.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    assert!(dirs.iter().all(|d| d == &dirs[0]), "all builders print the same folder: {dirs:?}");
    for n in names {
        let bin = std::path::Path::new(&dirs[0]).join(n);
        let out = std::process::Command::new(&bin).output().unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "selftest-stamp",
            "{} is complete and stamped",
            bin.display()
        );
    }
    let left: Vec<String> = std::fs::read_dir(cache.path().join("gobuild"))
        .expect("the gobuild folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !n.ends_with(".lock") && std::path::Path::new(&dirs[0]).file_name().is_some_and(|f| f != n.as_str())
        })
        .collect();
    assert!(left.is_empty(), "no temp folders left behind: {left:?}");
}

/// Ports handed out by the bed are reserved machine-wide (a lock under /tmp/oms-bed-ports) for as
/// long as this process runs, so another bed running at the same time never picks them, and they
/// lie below the kernel's ephemeral range, where programs binding port 0 get theirs.
#[test]
fn free_ports_are_reserved_machine_wide_and_outside_the_ephemeral_range() {
    let ports: Vec<u16> = (0..3).map(|_| support::proc::free_port().expect("a free port")).collect();
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").expect("the ephemeral range");
    let low: u16 = range.split_whitespace().next().and_then(|v| v.parse().ok()).expect("a number");
    for (i, port) in ports.iter().enumerate() {
        assert!(!ports[..i].contains(port), "distinct ports: {ports:?}");
        assert!(*port < low, "{port} is below the ephemeral range starting at {low}");
        let lock = format!("/tmp/oms-bed-ports/{port}.lock");
        let status =
            std::process::Command::new("flock").args(["-n", &lock, "true"]).status().expect("run flock (util-linux)");
        assert!(!status.success(), "another process cannot take {lock} while this one holds port {port}");
    }
}

/// A bed port taken by someone else between the check and the child's bind is not a failure of the
/// bed: it picks other ports and starts again (here etcd loses the race once, then fails for real,
/// so its second log is what the error shows).
#[test]
fn a_port_lost_to_another_process_is_retried_on_other_ports() {
    let assets = tempfile::tempdir().expect("tempdir");
    let marker = assets.path().join("lost-once");
    let etcd = format!(
        "#!/bin/sh\nif [ ! -e {m} ]; then touch {m}\n  echo '{{\"level\":\"fatal\",\"msg\":\"listen tcp 127.0.0.1:1: bind: address already in use\"}}' >&2\n  exit 1\nfi\necho 'fatal: data dir is corrupt' >&2\nexit 3\n",
        m = marker.display()
    );
    for (bin, text) in [
        ("etcd", etcd.as_str()),
        ("kube-apiserver", "#!/bin/sh\nexit 3\n"),
        ("kube-controller-manager", "#!/bin/sh\nexit 3\n"),
    ] {
        let p = assets.path().join(bin);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    let error = ControlPlane::start(Options { assets: Some(assets.path().to_path_buf()), ..Options::default() })
        .err()
        .expect("the start must fail");
    assert!(marker.exists(), "etcd ran");
    assert!(error.0.contains("etcd exited") && error.0.contains("fatal: data dir is corrupt"), "retried: {error}");
    assert!(!error.0.contains("already in use"), "{error}");
}
