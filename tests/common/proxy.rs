//! A loopback TCP proxy that can freeze: while frozen it forwards nothing in either direction
//! and closes nothing (a half-open peer, as a dead network path looks), and new connections
//! are accepted but not forwarded. It can also move to another target (a failover behind a
//! virtual address): the open connections are closed, new ones go to the new target.
//! Threads only; stopped when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

pub struct Proxy {
    pub port: u16,
    frozen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    target: Arc<AtomicU16>,
    /// Bumped by [`Proxy::retarget`]: connections of an older generation close.
    generation: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Shared {
    frozen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    target: Arc<AtomicU16>,
    generation: Arc<AtomicU64>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<new port> to 127.0.0.1:`target`.
    pub fn start(target: u16) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = l.local_addr().expect("proxy addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let sh = Shared {
            frozen: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            target: Arc::new(AtomicU16::new(target)),
            generation: Arc::new(AtomicU64::new(0)),
        };
        let s2 = sh.clone();
        std::thread::spawn(move || {
            while !s2.stop.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((client, _)) => {
                        let s3 = s2.clone();
                        std::thread::spawn(move || serve(client, s3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy {
            port,
            frozen: sh.frozen,
            stop: sh.stop,
            target: sh.target,
            generation: sh.generation,
        }
    }

    /// Moves to 127.0.0.1:`target`: open connections close, new ones go there.
    pub fn retarget(&self, target: u16) {
        self.target.store(target, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(client: TcpStream, sh: Shared) {
    // A connection accepted while frozen waits, unforwarded, until the thaw.
    while sh.frozen.load(Ordering::SeqCst) {
        if sh.stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let generation = sh.generation.load(Ordering::SeqCst);
    let Ok(server) = TcpStream::connect(("127.0.0.1", sh.target.load(Ordering::SeqCst))) else {
        return;
    };
    let pairs = [
        (client.try_clone(), server.try_clone()),
        (server.try_clone(), client.try_clone()),
    ];
    for (from, to) in pairs {
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let sh = sh.clone();
        std::thread::spawn(move || pump(from, to, sh, generation));
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, sh: Shared, generation: u64) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if sh.stop.load(Ordering::SeqCst) {
            break;
        }
        if sh.generation.load(Ordering::SeqCst) != generation {
            // Retargeted: this connection goes, both ways.
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
        if sh.frozen.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
