//! The test bed: a real control plane (etcd, kube-apiserver, kube-controller-manager) and the AWS
//! emulator server, each started once per test binary and shared by its tests, which keep apart by
//! working in namespaces and stacks of their own.
//!
//! Every child process is tied to the test process (PR_SET_PDEATHSIG), so none outlives it, even
//! when a test panics or the binary is killed.
#![allow(dead_code)]

pub mod chart;
pub mod controlplane;
pub mod emulator;
pub mod health;
pub mod operator;
pub mod proc;
pub mod proxy;
pub mod redis;
pub mod world;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name unique within this run, for namespaces and stacks: `<prefix>-<pid><time><n>` in base 36.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let raw = (u64::from(std::process::id()) << 40) ^ (u64::from(nanos) << 8) ^ u64::from(n);
    format!("{prefix}-{}", base36(raw))
}

fn base36(mut v: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Polls `check` until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
