//! A real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager
//! (garbage collector and namespace controllers), built from pinned Go modules by
//! `tests/controlplane/build.sh`, or taken from `KUBEBUILDER_ASSETS`.
//!
//! The apiserver serves TLS from a CA made here with openssl, authenticates an admin bearer token
//! (group system:masters) and authorizes with RBAC, so RBAC rules can be proven against it.

use super::proc::{
    BedError, Proc, Result, bed_tempdir, ensure_port_free, err, free_port, http_request, keep, repo_root,
    retry_lost_ports,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "oms-bed-admin-token";

/// Ports to use; `None` picks a free one.
#[derive(Default, Clone)]
pub struct Options {
    pub assets: Option<PathBuf>,
    pub etcd_port: Option<u16>,
    pub apiserver_port: Option<u16>,
}

pub struct ControlPlane {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
    pub startup: Duration,
    procs: Vec<Proc>,
    /// How kube-apiserver was started (program, arguments, log), to start it again.
    apiserver: (PathBuf, Vec<String>, PathBuf),
}

/// Where the control-plane binaries are: `KUBEBUILDER_ASSETS`, or whatever the build script
/// builds (once) or finds in its cache.
pub fn assets_dir() -> Result<PathBuf> {
    let script = repo_root().join("tests/controlplane/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| BedError(format!("cannot run {}: {e}", script.display())))?;
    if !out.status.success() {
        return err(format!("{} failed ({}):\n{}", script.display(), out.status, String::from_utf8_lossy(&out.stderr)));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(PathBuf::from(dir))
}

/// The Kubernetes release pinned in `tests/controlplane/go.mod` (e.g. `v1.35.4`), which the build
/// stamps into the binaries and the apiserver reports.
pub fn pinned_kubernetes_version() -> String {
    let go_mod = repo_root().join("tests/controlplane/go.mod");
    let text = std::fs::read_to_string(&go_mod).unwrap_or_else(|e| panic!("read {}: {e}", go_mod.display()));
    text.lines()
        .filter(|l| !l.contains("=>"))
        .map(|l| l.trim().trim_start_matches("require").trim_start())
        .find_map(|l| l.strip_prefix("k8s.io/kubernetes "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{} pins no k8s.io/kubernetes version", go_mod.display()))
}

/// Runs the openssl CLI in `dir` (the bed's certificates are made with it).
pub fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| BedError(format!("openssl is needed to make the bed's certificates: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        err(format!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

/// A CA, a serving certificate for 127.0.0.1 signed by it, and the service-account key pair.
fn make_pki(dir: &Path) -> Result<()> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=oms-bed-ca", "-days", "7"]);
    openssl(dir, &ca)?;
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend(["-keyout", "serving.key", "-out", "serving.csr", "-subj", "/CN=127.0.0.1"]);
    openssl(dir, &csr)?;
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        .map_err(|e| BedError(format!("write san.ext: {e}")))?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "serving.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "serving.crt",
            "-days",
            "7",
            "-extfile",
            "san.ext",
        ],
    )?;
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key"])?;
    openssl(dir, &["ec", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    Ok(())
}

/// A kubeconfig for `url` with a bearer token, trusting the bed's CA.
pub fn write_kubeconfig(path: &Path, url: &str, ca: &Path, token: &str) -> Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: bed\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\n\
         users:\n- name: bed\n  user:\n    token: {token}\ncontexts:\n- name: bed\n  context:\n    cluster: bed\n    user: bed\n\
         current-context: bed\n",
        ca = ca.display()
    );
    std::fs::write(path, text).map_err(|e| BedError(format!("write {}: {e}", path.display())))
}

impl ControlPlane {
    /// Starts etcd, then kube-apiserver (waiting for /readyz), then kube-controller-manager.
    pub fn start(opts: Options) -> Result<ControlPlane> {
        let started = Instant::now();
        let assets = match opts.assets {
            Some(a) => a,
            None => assets_dir()?,
        };
        // Ports the caller chose are checked first, so a taken one fails at once with a clear message;
        // ports of the bed's choosing are reserved (free_port), and picked anew if lost anyway.
        if let Some(port) = opts.etcd_port {
            ensure_port_free(port, "etcd")?;
        }
        if let Some(port) = opts.apiserver_port {
            ensure_port_free(port, "kube-apiserver")?;
        }

        let dir = bed_tempdir("oms-bed")?;
        let d = dir.path();
        make_pki(d)?;
        std::fs::write(d.join("tokens.csv"), format!("{ADMIN_TOKEN},bed-admin,bed-admin,\"system:masters\"\n"))
            .map_err(|e| BedError(format!("write tokens.csv: {e}")))?;

        let mut procs = Vec::new();
        let (etcd, etcd_url) = retry_lost_ports("etcd", opts.etcd_port.is_some(), || {
            let etcd_port = opts.etcd_port.map(Ok).unwrap_or_else(free_port)?;
            let peer_port = free_port()?;
            let etcd_url = format!("http://127.0.0.1:{etcd_port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            // A fresh member each time: a data dir remembers the peer URL it was made with.
            let _ = std::fs::remove_dir_all(d.join("etcd"));
            let mut etcd = Proc::spawn(
                "etcd",
                &assets.join("etcd"),
                &[
                    format!("--data-dir={}", d.join("etcd").display()),
                    format!("--listen-client-urls={etcd_url}"),
                    format!("--advertise-client-urls={etcd_url}"),
                    format!("--listen-peer-urls={peer_url}"),
                    format!("--initial-advertise-peer-urls={peer_url}"),
                    format!("--initial-cluster=default={peer_url}"),
                    "--unsafe-no-fsync=true".into(),
                    "--log-level=warn".into(),
                ],
                &[],
                d.join("etcd.log"),
            )?;
            // etcd's own health answer, not just an open port: that could be another process's.
            etcd.wait_ready(Duration::from_secs(30), || {
                matches!(http_request(etcd_port, "GET", "/health", ""), Ok((200, body)) if body.contains("\"health\":\"true\""))
            })?;
            Ok((etcd, etcd_url))
        })?;
        procs.push(etcd);

        let kubeconfig = d.join("kubeconfig");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BedError(format!("tokio runtime: {e}")))?;
        let (api, url, api_args) = retry_lost_ports("kube-apiserver", opts.apiserver_port.is_some(), || {
            let api_port = opts.apiserver_port.map(Ok).unwrap_or_else(free_port)?;
            let url = format!("https://127.0.0.1:{api_port}");
            let args = [
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", d.display()),
                format!("--tls-cert-file={}", d.join("serving.crt").display()),
                format!("--tls-private-key-file={}", d.join("serving.key").display()),
                format!("--token-auth-file={}", d.join("tokens.csv").display()),
                "--authorization-mode=RBAC".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", d.join("sa.pub").display()),
                format!("--service-account-signing-key-file={}", d.join("sa.key").display()),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--endpoint-reconciler-type=none".into(),
                "--enable-priority-and-fairness=false".into(),
                "--profiling=false".into(),
                "--v=0".into(),
            ];
            let mut api = Proc::spawn(
                "kube-apiserver",
                &assets.join("kube-apiserver"),
                &args,
                &[],
                d.join("kube-apiserver.log"),
            )?;
            write_kubeconfig(&kubeconfig, &url, &d.join("ca.crt"), ADMIN_TOKEN)?;
            let probe_kc = kubeconfig.clone();
            api.wait_ready(Duration::from_secs(60), || rt.block_on(readyz(&probe_kc)))?;
            Ok((api, url, args.to_vec()))
        })?;
        procs.push(api);
        let apiserver = (assets.join("kube-apiserver"), api_args, d.join("kube-apiserver.log"));

        let mut kcm = Proc::spawn(
            "kube-controller-manager",
            &assets.join("kube-controller-manager"),
            &[
                format!("--kubeconfig={}", kubeconfig.display()),
                "--controllers=garbage-collector-controller,namespace-controller".into(),
                "--leader-elect=false".into(),
                "--secure-port=0".into(),
                "--use-service-account-credentials=false".into(),
                "--v=0".into(),
            ],
            &[],
            d.join("kube-controller-manager.log"),
        )?;
        // It has no health endpoint without a serving port; give it a moment to fail on bad flags.
        std::thread::sleep(Duration::from_millis(500));
        kcm.ensure_running()?;
        procs.push(kcm);

        Ok(ControlPlane { dir, kubeconfig, url, startup: started.elapsed(), procs, apiserver })
    }

    /// Stops kube-apiserver (SIGKILL) and starts it again on the same port and etcd, from the
    /// calling thread (the new process dies with it); wait for it with [`ControlPlane::client`] calls.
    pub fn restart_apiserver(&mut self) -> Result<()> {
        self.procs.retain(|p| p.name != "kube-apiserver");
        let (program, args, log) = &self.apiserver;
        let api = Proc::spawn("kube-apiserver", program, args, &[], log.with_extension("restarted.log"))?;
        self.procs.push(api);
        Ok(())
    }

    /// A client for the admin identity, made in the calling test's runtime.
    pub async fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config().await).expect("a client for the bed")
    }

    pub async fn config(&self) -> kube::Config {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("the bed's kubeconfig");
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("the bed's kubeconfig is valid")
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Fails when a process of the control plane died since start.
    pub fn ensure_running(&mut self) -> Result<()> {
        self.procs.iter_mut().try_for_each(Proc::ensure_running)
    }
}

async fn readyz(kubeconfig: &Path) -> bool {
    let Ok(kc) = kube::config::Kubeconfig::read_from(kubeconfig) else {
        return false;
    };
    let Ok(cfg) = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await else {
        return false;
    };
    let Ok(client) = kube::Client::try_from(cfg) else {
        return false;
    };
    let Ok(req) = http::Request::get("/readyz").body(Vec::new()) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), client.request_text(req)).await,
        Ok(Ok(body)) if body.trim() == "ok"
    )
}

static SHARED: OnceLock<std::result::Result<ControlPlane, BedError>> = OnceLock::new();

/// The control plane of this test binary, started on first use.
pub fn shared() -> &'static ControlPlane {
    keep(&SHARED, || {
        let cp = ControlPlane::start(Options::default())?;
        eprintln!("bed: control plane ready in {:.1}s", cp.startup.as_secs_f64());
        Ok(cp)
    })
}

/// A fresh namespace for one test, on the shared control plane.
pub async fn test_namespace(client: &kube::Client, prefix: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    let name = super::unique_name(prefix);
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "oms-bed/test": "true" } }
    }))
    .expect("namespace object");
    kube::Api::<Namespace>::all(client.clone())
        .create(&Default::default(), &ns)
        .await
        .expect("create the test namespace");
    name
}
