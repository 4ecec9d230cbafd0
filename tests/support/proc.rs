//! Child processes of the bed: started tied to the test process, with their output in a log
//! file whose last lines go into every start-up error.

use std::fmt;
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
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

/// Where ports handed out by [`free_port`] are reserved, machine-wide: one lock file per port, held
/// (flock) by the process that handed it out for as long as that process runs; the kernel drops the
/// lock when it exits. Beds of other checkouts running at the same time skip these ports.
pub const PORT_LOCK_DIR: &str = "/tmp/oms-bed-ports";

/// How many times a piece of the bed is started on new ports when another process took one of its
/// ports between the pick and the child's bind.
pub const PORT_ATTEMPTS: u32 = 5;

/// Ports this process reserved, with their held locks; kept until the process exits.
static RESERVED: Mutex<Vec<(u16, Option<File>)>> = Mutex::new(Vec::new());

/// Where the bed picks ports: below the kernel's ephemeral range, where programs binding port 0 and
/// outgoing connections get theirs, so only programs asking for a fixed port can collide.
fn port_range() -> (u16, u16) {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    if low >= 3024 { (low.saturating_sub(12000).max(1024), low) } else { (low, u16::MAX) }
}

/// Takes the machine-wide lock of `port`; `None` when another process holds it. When the lock dir
/// cannot be used at all, the port is taken without a lock (as before reservations existed).
fn lock_port(port: u16) -> Option<Option<File>> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::os::unix::io::AsRawFd;
    let dir = Path::new(PORT_LOCK_DIR);
    if !dir.is_dir() && std::fs::create_dir_all(dir).is_ok() {
        // Beds of every user share it.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
    }
    let path = dir.join(format!("{port}.lock"));
    let open = |write: bool| std::fs::OpenOptions::new().read(true).write(write).create(write).mode(0o666).open(&path);
    let Ok(file) = open(true).or_else(|_| open(false)) else {
        return Some(None);
    };
    // SAFETY: flock(2) on a descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    locked.then_some(Some(file))
}

/// A loopback port nobody listens on right now, reserved for this process until it exits: no other
/// bed (of this or another checkout) is handed it meanwhile. A child that binds it may still lose it
/// to an unrelated program; [`retry_lost_ports`] starts such a child again on other ports.
pub fn free_port() -> Result<u16> {
    let (low, high) = port_range();
    let span = u64::from(high - low);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut x = ((nanos as u64) ^ (u64::from(std::process::id()) << 32)) | 1;
    let mut reserved = RESERVED.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..512 {
        // xorshift64: a different sequence in every process.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = low + (x % span) as u16;
        if reserved.iter().any(|(p, _)| *p == port) {
            continue;
        }
        let Some(lock) = lock_port(port) else { continue };
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        reserved.push((port, lock));
        return Ok(port);
    }
    err(format!("cannot find a free loopback port in {low}..{high} (locks in {PORT_LOCK_DIR}) after 512 tries"))
}

/// Whether a start failed because a child found its port taken ("address already in use").
pub fn lost_a_port(e: &BedError) -> bool {
    e.0.to_ascii_lowercase().contains("address already in use")
}

/// Runs `start`, which picks its ports with [`free_port`], again (up to [`PORT_ATTEMPTS`] times)
/// when it fails because another process took one of them first. `ports_given` means the caller
/// chose the ports: then a taken port is the caller's to fix, and the error comes at once.
pub fn retry_lost_ports<T>(what: &str, ports_given: bool, mut start: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(e) if !ports_given && lost_a_port(&e) => {
                if attempt >= PORT_ATTEMPTS {
                    return err(format!(
                        "{e}\n({what} found its port taken on each of {attempt} tries, on different ports)"
                    ));
                }
                eprintln!("bed: another process took a port of {what}; starting it again on other ports");
                attempt += 1;
            }
            other => return other,
        }
    }
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
