//! Health as GitOps tools read it. The helper built from `tests/kstatus` (once, cached by
//! `tests/kstatus/build.sh`) judges one object two ways: kstatus's `status.Compute` (Flux,
//! kubectl-wait-like tools) and the Argo CD Lua health check `docs/argocd/health.lua`, run in
//! gopher-lua the way Argo CD runs it. Objects are judged exactly as the apiserver serves them.

use super::proc::repo_root;
use serde::Deserialize;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// The Argo CD health check, in the repository.
pub const SCRIPT: &str = "docs/argocd/health.lua";
/// Where argocd-cm takes it.
pub const ARGOCD_CM_KEY: &str = "resource.customizations.health.data.oms-spider.io_OmsRedis";
/// The doc carrying the ready-to-paste argocd-cm snippet.
pub const DOC: &str = "docs/argocd.md";
pub const PAUSED: &str = "data.oms-spider.io/paused";

/// What kstatus and Argo CD say about one object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub kstatus: String,
    pub kstatus_message: String,
    pub argo: String,
    pub argo_message: String,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kstatus {} ({:?}), Argo CD {} ({:?})",
            self.kstatus, self.kstatus_message, self.argo, self.argo_message
        )
    }
}

/// The helper binary: `OMS_HEALTH_HELPER`, or what `tests/kstatus/build.sh` builds (once per machine;
/// Go is needed the first time).
pub fn helper() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("OMS_HEALTH_HELPER") {
            return PathBuf::from(p);
        }
        let script = repo_root().join("tests/kstatus/build.sh");
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("health: helper ready in {:.1}s", started.elapsed().as_secs_f64());
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("health")
    })
}

/// Runs the helper on `obj` with `docs/argocd/health.lua`.
pub fn judge(obj: &Value) -> Verdict {
    let mut child = Command::new(helper())
        .arg(repo_root().join(SCRIPT))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", helper().display()));
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(obj.to_string().as_bytes()).expect("write the object to the helper");
    }
    let out = child.wait_with_output().expect("the helper's answer");
    assert!(
        out.status.success(),
        "the health helper failed ({}) on {obj}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the helper printed no verdict ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// An OmsRedis as the apiserver serves it (raw JSON, nothing dropped by a typed client), or None
/// when it does not exist.
pub async fn get_raw(client: &kube::Client, namespace: &str, name: &str) -> Option<Value> {
    get_raw_of::<oms_data_operator::redis::OmsRedis>(client, namespace, name).await
}

/// A resource of kind `K` as the apiserver serves it, or None when it does not exist.
pub async fn get_raw_of<K: kube::Resource<DynamicType = ()>>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Option<Value> {
    let path = format!("{}/{name}", K::url_path(&(), Some(namespace)));
    let req = http::Request::get(path).body(Vec::new()).expect("a GET request");
    match client.request::<Value>(req).await {
        Ok(v) => Some(v),
        Err(kube::Error::Api(s)) if s.is_not_found() => None,
        Err(e) => panic!("get {namespace}/{name}: {e}"),
    }
}

/// The condition `type_` of a raw object.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_)
}

pub fn condition_is(obj: &Value, type_: &str, status: &str) -> bool {
    condition(obj, type_).is_some_and(|c| c["status"] == status)
}

/// True only when the operator has observed the current generation and Ready is True for it.
pub fn ready_for_current_generation(obj: &Value) -> bool {
    let generation = &obj["metadata"]["generation"];
    !generation.is_null()
        && obj.pointer("/status/observedGeneration") == Some(generation)
        && condition(obj, "Ready").is_some_and(|c| c["status"] == "True" && &c["observedGeneration"] == generation)
}

/// The rule every judgement must keep: kstatus never says Current while Ready is not True for the
/// current generation.
pub fn assert_honest(obj: &Value, v: &Verdict, phase: &str) {
    assert!(
        v.kstatus != "Current" || ready_for_current_generation(obj),
        "{phase}: kstatus says Current but Ready is not True for generation {}: {v}\n{obj:#}",
        obj["metadata"]["generation"]
    );
}

/// The argocd-cm snippet docs/argocd.md carries for `script`: a merge patch for argocd-cm, between
/// the doc's markers.
pub fn argocd_cm_snippet(script: &str) -> String {
    let mut out = String::from(
        "```yaml\n\
         # argocd-cm-omsredis.yaml, generated from docs/argocd/health.lua\n\
         data:\n",
    );
    out.push_str(&format!("  {ARGOCD_CM_KEY}: |\n"));
    for line in script.lines() {
        if !line.is_empty() {
            out.push_str("    ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push_str("```\n");
    out
}

pub const SNIPPET_BEGIN: &str = "<!-- BEGIN argocd-cm snippet: generated from docs/argocd/health.lua -->\n";
pub const SNIPPET_END: &str = "<!-- END argocd-cm snippet -->\n";

/// The part of `doc` between the snippet markers.
pub fn snippet_in(doc: &str) -> Option<&str> {
    let start = doc.find(SNIPPET_BEGIN)? + SNIPPET_BEGIN.len();
    let len = doc[start..].find(SNIPPET_END)?;
    Some(&doc[start..start + len])
}
