//! The endpoint check: does the published endpoint answer a workload's first words? It uses the
//! connection Secret's own values (host, port, TLS, password), so it checks what workloads get:
//! TCP connect, the TLS handshake where the cache has it, AUTH, then PING, each under a deadline.

use crate::stack::Probe;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::secret_key;

/// How long each step may take, and the whole check.
const STEP_DEADLINE: Duration = Duration::from_secs(5);
const WHOLE_DEADLINE: Duration = Duration::from_secs(15);

/// Checks the endpoint in `secret` (the connection Secret's data).
pub async fn check(secret: &BTreeMap<String, String>) -> Probe {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(WHOLE_DEADLINE, run(secret)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("the check took longer than {} s", WHOLE_DEADLINE.as_secs())),
    };
    let latency = started.elapsed();
    match outcome {
        Ok(what) => Probe { reachable: true, latency, message: what },
        Err(why) => Probe { reachable: false, latency, message: why },
    }
}

async fn run(secret: &BTreeMap<String, String>) -> Result<String, String> {
    let host = secret.get(secret_key::HOST).ok_or("the connection Secret has no REDIS_HOST")?;
    let port = secret.get(secret_key::PORT).ok_or("the connection Secret has no REDIS_PORT")?;
    let tls = secret.get(secret_key::TLS).is_some_and(|v| v == "true");
    let password = secret.get(secret_key::PASSWORD);
    let address = format!("{host}:{port}");
    let tcp = step("connect", TcpStream::connect(&address))
        .await?
        .map_err(|e| format!("could not connect to {address}: {e}"))?;
    let answer = if tls {
        let stream = handshake(host, tcp).await?;
        converse(stream, password.map(String::as_str)).await?
    } else {
        converse(tcp, password.map(String::as_str)).await?
    };
    let mode = if tls { "TLS, " } else { "" };
    let auth = if password.is_some() { "AUTH, " } else { "" };
    Ok(format!("{address} answered {answer} ({mode}{auth}PING)"))
}

async fn handshake(host: &str, tcp: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    // The system's roots; SSL_CERT_FILE / SSL_CERT_DIR point elsewhere when set. Unreadable
    // entries are skipped, as a browser would.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS is not available: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host} is not a name a TLS certificate can be checked against"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    step("TLS handshake", connector.connect(name, tcp))
        .await?
        .map_err(|e| format!("TLS handshake with {host} failed: {e}"))
}

/// AUTH (when there is a password), then PING; the PING's answer.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, password: Option<&str>) -> Result<String, String> {
    if let Some(p) = password {
        let reply = command(&mut stream, &["AUTH", p]).await?;
        if !reply.starts_with("+OK") {
            // Only the error's code (WRONGPASS, NOAUTH, ERR…): the rest of a reply can quote the
            // command's arguments, the password among them.
            let code: String =
                reply.trim_start_matches(['-', '+']).chars().take_while(|c| c.is_ascii_uppercase()).collect();
            return Err(format!("AUTH was refused ({})", if code.is_empty() { "an unexpected reply" } else { &code }));
        }
    }
    let reply = command(&mut stream, &["PING"]).await?;
    match reply.trim() {
        "+PONG" => Ok("PONG".into()),
        other => Err(format!("PING was answered with {other}")),
    }
}

/// Sends one command in RESP and reads the first line of the reply.
async fn command<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, args: &[&str]) -> Result<String, String> {
    let mut request = format!("*{}\r\n", args.len());
    for a in args {
        request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    step("send", stream.write_all(request.as_bytes())).await?.map_err(|e| format!("the connection broke: {e}"))?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") && reply.len() < 512 {
        let n =
            step("read the reply", stream.read(&mut byte)).await?.map_err(|e| format!("the connection broke: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        reply.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&reply).to_string())
}

async fn step<T>(what: &str, fut: impl std::future::Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(STEP_DEADLINE, fut)
        .await
        .map_err(|_| format!("{what} took longer than {} s", STEP_DEADLINE.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that quotes the arguments of what it refused (as Redis does for an unknown command).
    #[tokio::test]
    async fn a_refused_auth_is_reported_by_its_code_never_with_the_reply_text() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"-ERR unknown command 'AUTH', with args beginning with: 'S3cretPassw0rd'\r\n").await;
        });
        let secret = BTreeMap::from([
            (secret_key::HOST.to_string(), "127.0.0.1".to_string()),
            (secret_key::PORT.to_string(), port.to_string()),
            (secret_key::PASSWORD.to_string(), "S3cretPassw0rd".to_string()),
        ]);
        let probe = check(&secret).await;
        assert!(!probe.reachable);
        assert_eq!(probe.message, "AUTH was refused (ERR)");
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_unreachable_with_the_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let secret = BTreeMap::from([
            (secret_key::HOST.to_string(), "127.0.0.1".to_string()),
            (secret_key::PORT.to_string(), port.to_string()),
        ]);
        let probe = check(&secret).await;
        assert!(!probe.reachable);
        assert!(probe.message.contains(&format!("127.0.0.1:{port}")), "{}", probe.message);
    }
}
