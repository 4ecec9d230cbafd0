//! A TCP proxy in front of the AWS emulator that a test can take down (connections refused) or
//! hang (connections accepted, nothing answered), to see what the operator does when AWS is
//! unreachable or stops answering, and how soon it recovers.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

const PASS: u8 = 0;
const DOWN: u8 = 1;
const HANG: u8 = 2;
const STOP: u8 = 3;

pub struct Proxy {
    pub url: String,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `upstream_port`.
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("address").port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let m = mode.clone();
        std::thread::spawn(move || serve(listener, port, upstream_port, m));
        Proxy { url: format!("http://127.0.0.1:{port}"), mode }
    }

    pub fn pass(&self) {
        self.mode.store(PASS, Ordering::SeqCst);
    }

    /// Refuses connections (the port is closed) and cuts the open ones.
    pub fn down(&self) {
        self.mode.store(DOWN, Ordering::SeqCst);
    }

    /// Accepts connections and sends nothing, on new and open connections alike.
    pub fn hang(&self) {
        self.mode.store(HANG, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.mode.store(STOP, Ordering::SeqCst);
    }
}

fn serve(listener: TcpListener, port: u16, upstream: u16, mode: Arc<AtomicU8>) {
    let mut listener = Some(listener);
    loop {
        match mode.load(Ordering::SeqCst) {
            STOP => return,
            DOWN => {
                listener = None;
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            _ => {}
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => listener.insert(l),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let _ = l.set_nonblocking(true);
        match l.accept() {
            Ok((client, _)) => {
                let m = mode.clone();
                std::thread::spawn(move || relay(client, upstream, m));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Copies bytes both ways while the mode is PASS; holds them while HANG; cuts at DOWN or STOP.
fn relay(client: TcpStream, upstream: u16, mode: Arc<AtomicU8>) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
    for s in [&client, &server] {
        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
        let _ = s.set_nodelay(true);
    }
    let (c, s) = (client, server);
    let mut buf = [0u8; 16384];
    loop {
        match mode.load(Ordering::SeqCst) {
            DOWN | STOP => break,
            HANG => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            _ => {}
        }
        let mut moved = false;
        for (mut from, mut to) in [(&c, &s), (&s, &c)] {
            match from.read(&mut buf) {
                Ok(0) => {
                    let _ = c.shutdown(Shutdown::Both);
                    let _ = s.shutdown(Shutdown::Both);
                    return;
                }
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    moved = true;
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
        if !moved {
            std::thread::yield_now();
        }
    }
    let _ = c.shutdown(Shutdown::Both);
    let _ = s.shutdown(Shutdown::Both);
}
