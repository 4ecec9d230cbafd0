//! A real redis-server with TLS, standing in for an ElastiCache replication group with in-transit
//! encryption. The AWS emulator, once a group is bound to it ([`super::emulator::Emulator::bind_redis`]),
//! points the group's endpoints at it and keeps its `default` user's passwords in step with the
//! group's AUTH tokens, logging in as an admin ACL user of its own.

use super::controlplane::openssl;
use super::proc::{BedError, Proc, Result, bed_tempdir, free_port, retry_lost_ports};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A redis-server on loopback that speaks only TLS, with a certificate of a CA of its own for
/// 127.0.0.1 and localhost. Clients need not present certificates. Killed when dropped.
pub struct TlsRedis {
    pub host: String,
    pub port: u16,
    /// Whether it speaks TLS (`start`) or plain TCP (`start_plain`, as dev and staging caches do).
    pub tls: bool,
    /// The CA that signed the server's certificate: what clients verify the server with.
    pub ca_file: PathBuf,
    /// An ACL user with every permission, for whoever manages the `default` user (the emulator).
    pub admin_user: String,
    pub admin_password: String,
    // Declared before the dir: the server is killed before its files go.
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    /// Makes the CA and the server certificate, then starts redis-server on a free port. Start it
    /// from the test's own thread (the server dies with the thread that started it).
    pub fn start() -> Result<TlsRedis> {
        Self::start_with(true)
    }

    /// A redis-server without TLS, with the same admin user.
    pub fn start_plain() -> Result<TlsRedis> {
        Self::start_with(false)
    }

    fn start_with(tls: bool) -> Result<TlsRedis> {
        let dir = bed_tempdir("oms-tls-redis")?;
        let d = dir.path();
        make_certs(d)?;
        let admin_user = "oms-admin".to_string();
        let admin_password = random_hex(24)?;
        // The admin user goes in a config file (not the command line, where `ps` shows it).
        let conf = d.join("redis.conf");
        write_private(&conf, &format!("user {admin_user} on >{admin_password} ~* &* +@all\n"))?;
        let path = |f: &str| d.join(f).to_string_lossy().to_string();
        let (proc, port) = retry_lost_ports("the TLS redis-server", false, || {
            let port = free_port()?;
            let (plain_port, tls_port) = if tls { (0, port) } else { (port, 0) };
            let args: Vec<String> = vec![
                path("redis.conf"),
                "--port".into(),
                plain_port.to_string(),
                "--tls-port".into(),
                tls_port.to_string(),
                "--tls-cert-file".into(),
                path("server.crt"),
                "--tls-key-file".into(),
                path("server.key"),
                "--tls-ca-cert-file".into(),
                path("ca.crt"),
                "--tls-auth-clients".into(),
                "no".into(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                "".into(),
                "--dir".into(),
                path(""),
            ];
            Ok((spawn_redis_server("TLS redis-server", &args, port, &d.join("redis.log"))?, port))
        })?;
        Ok(TlsRedis {
            host: "127.0.0.1".to_string(),
            port,
            tls,
            ca_file: d.join("ca.crt"),
            admin_user,
            admin_password,
            _proc: proc,
            _dir: dir,
        })
    }

    /// `redis-cli PING` over TLS, as the `default` user with `password` (or without AUTH): its
    /// trimmed output, `PONG`, or the refusal (`NOAUTH ...`, `AUTH failed: WRONGPASS ...`).
    pub fn ping(&self, password: Option<&str>) -> String {
        match password {
            Some(pw) => self.cli(&["--user", "default", "--pass", pw], &["PING"]),
            None => self.cli(&[], &["PING"]),
        }
    }

    /// Runs one command as the admin user; its trimmed output.
    pub fn admin(&self, command: &[&str]) -> String {
        self.cli(&["--user", &self.admin_user, "--pass", &self.admin_password], command)
    }

    fn cli(&self, auth: &[&str], command: &[&str]) -> String {
        let mut cli = Command::new("redis-cli");
        if self.tls {
            cli.arg("--tls").arg("--cacert").arg(&self.ca_file);
        }
        let out = cli
            .args(["-h", &self.host, "-p", &self.port.to_string()])
            .args(auth)
            .arg("--no-auth-warning")
            .args(command)
            .output()
            .expect("run redis-cli (install it: apt-get install redis-tools)");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).trim().to_string()
    }

    /// This server as the emulator's `redis_bindings` entry for a replication group.
    pub fn emulator_binding(&self) -> Value {
        json!({
            "host": self.host,
            "port": self.port,
            "tls": self.tls,
            "ca_file": self.ca_file.to_string_lossy(),
            "admin_user": self.admin_user,
            "admin_password": self.admin_password,
        })
    }
}

/// Starts redis-server with `args`, listening on `port`, and waits until it says it is ready.
pub fn spawn_redis_server(what: &str, args: &[String], port: u16, log: &Path) -> Result<Proc> {
    let mut proc = Proc::spawn(what, Path::new("redis-server"), args, &[], log.to_path_buf())
        .map_err(|e| BedError(format!("{e} (install it: apt-get install redis-server)")))?;
    // Its own word, not just an open port, which could be another program's.
    let log = proc.log.clone();
    proc.wait_ready(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Ready to accept connections"))
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    Ok(proc)
}

/// ca.crt/ca.key (a CA), and server.crt/server.key for 127.0.0.1 and localhost signed by it.
fn make_certs(dir: &Path) -> Result<()> {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca = ["req", "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=oms-bed test CA"];
    openssl(dir, &[&ca[..2], &ec[..], &ca[2..]].concat())?;
    let csr = ["req", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"];
    openssl(dir, &[&csr[..1], &ec[..], &csr[1..]].concat())?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| BedError(format!("cannot write server.ext: {e}")))?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
    )
}

fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| BedError(format!("cannot read /dev/urandom: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| BedError(format!("cannot write {}: {e}", path.display())))
}
