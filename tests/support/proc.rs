//! Child processes of the bed: started tied to the test process, with their output in a log
//! file whose last lines go into every start-up error.

use std::fmt;
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Why the bed could not start. The message is meant to be read by a person as is.
#[derive(Clone)]
pub struct BedError(pub String);

impl fmt::Display for BedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for BedError {
    // Test output shows Debug; keep the message readable there too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BedError {}

pub type Result<T> = std::result::Result<T, BedError>;

pub fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(BedError(msg.into()))
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| BedError(format!("cannot find a free loopback port: {e}")))
}

/// Fails with a clear message when `port` is taken, before anything is started on it.
pub fn ensure_port_free(port: u16, who: &str) -> Result<()> {
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) => err(format!(
            "port 127.0.0.1:{port} is already in use ({e}); {who} needs it: stop whatever holds it or choose another port"
        )),
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// A running child process of the bed. Dropping it kills it.
pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: std::process::Child,
}

impl Proc {
    /// Starts `program` with its stdout and stderr in `log`. The child gets SIGKILL when the thread
    /// that started it ends, so start long-lived processes from a thread that lives as long as the
    /// test process (see [`keep`]).
    pub fn spawn(name: &str, program: &Path, args: &[String], env: &[(&str, &str)], log: PathBuf) -> Result<Proc> {
        let out = File::create(&log).map_err(|e| BedError(format!("cannot create {}: {e}", log.display())))?;
        let errf = out.try_clone().map_err(|e| BedError(format!("cannot open {}: {e}", log.display())))?;
        let mut cmd = Command::new(program);
        cmd.args(args).envs(env.iter().copied()).stdin(Stdio::null()).stdout(out).stderr(errf);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| BedError(format!("{name} does not start: cannot execute {}: {e}", program.display())))?;
        Ok(Proc { name: name.to_string(), log, child })
    }

    /// Waits until `ready` says yes. Fails early, with the log's last lines, when the process exits
    /// first or the time runs out.
    pub fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<Duration> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return err(format!(
                    "{} exited ({status}) before it was ready; last log lines ({}):\n{}",
                    self.name,
                    self.log.display(),
                    log_tail(&self.log, 20)
                ));
            }
            if ready() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                return err(format!(
                    "{} was not ready after {timeout:?}; last log lines ({}):\n{}",
                    self.name,
                    self.log.display(),
                    log_tail(&self.log, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails with the log's last lines when the process has already exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => err(format!(
                "{} exited ({status}); last log lines ({}):\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log, 20)
            )),
            _ => Ok(()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a shared piece of the bed once per test binary, on a thread that never ends, so the
/// processes it starts live until the test process exits and die with it.
pub fn keep<T: Send + Sync + 'static>(
    cell: &'static OnceLock<std::result::Result<T, BedError>>,
    start: fn() -> Result<T>,
) -> &'static T {
    let result = cell.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("bed-keeper".into())
            .spawn(move || {
                let _ = tx.send(start());
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the bed keeper thread");
        rx.recv().unwrap_or_else(|_| Err(BedError("the bed keeper thread died".into())))
    });
    match result {
        Ok(v) => v,
        Err(e) => panic!("the test bed did not start: {e}"),
    }
}

/// A temp dir named after this process. Shared bed pieces live for the whole test process and are
/// never dropped, so each start also removes the dirs of earlier test processes that are gone.
pub fn bed_tempdir(kind: &str) -> Result<tempfile::TempDir> {
    let tmp = std::env::temp_dir();
    let prefix = format!("{kind}-");
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(pid) = name.strip_prefix(&prefix).and_then(|r| r.split('-').next()) else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{kind}-{}-", std::process::id()))
        .tempdir_in(&tmp)
        .map_err(|e| BedError(format!("cannot make a temp dir in {}: {e}", tmp.display())))
}

/// The repository root, for scripts and files the bed uses.
pub fn repo_root() -> PathBuf {
    // Cargo sets CARGO_MANIFEST_DIR when it runs a test, so a test binary reused from another
    // checkout (the target dir is shared) still works on this one.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// One HTTP/1.1 request on loopback; the answer's status and body.
pub fn http_request(port: u16, method: &str, path: &str, body: &str) -> std::result::Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP status")?;
    let payload = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    Ok((status, payload))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
