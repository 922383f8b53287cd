//! A TCP proxy on 127.0.0.1 in front of a real server that injects
//! transient faults: the next N connections get `503 SlowDown` (what S3
//! answers when it sheds load) instead of reaching the server. It can also
//! limit each connection's download bandwidth (server to client), as a
//! slow network does, or hang: accept connections and never answer, as a
//! wedged server or a black-holing load balancer does.
//!
//! It works at the connection level so it needs no HTTP parser: a
//! connection is either failed after its first request head or forwarded
//! byte for byte. Arming faults closes every forwarded connection, so the
//! client's pooled keep-alive connections cannot bypass them.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

#[derive(Default)]
struct State {
    failures_left: AtomicUsize,
    failed: AtomicUsize,
    forwarded: AtomicUsize,
    open: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
    /// Bytes per second per connection, server to client (0: no limit).
    bandwidth: AtomicU64,
    /// New connections are accepted and held, never answered.
    hang: AtomicBool,
    held: Mutex<Vec<TcpStream>>,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: point the client here.
    pub endpoint: String,
    state: Arc<State>,
}

impl FaultProxy {
    /// Proxies to `upstream` (`http://host:port`), faults disarmed.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(State::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if st.hang.load(Ordering::SeqCst) {
                    st.held.lock().expect("lock").push(conn);
                    continue;
                }
                let fail = st
                    .failures_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let st = st.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    if fail {
                        // Counted before the answer is written: a client
                        // that has seen the 503 must see it counted.
                        st.failed.fetch_add(1, Ordering::SeqCst);
                        slow_down(conn);
                    } else {
                        forward(conn, &upstream, &st);
                    }
                });
            }
        });
        FaultProxy { endpoint, state }
    }

    /// The next `n` connections are answered `503 SlowDown`; connections
    /// open now are closed.
    pub fn fail_next(&self, n: usize) {
        self.state.failures_left.store(n, Ordering::SeqCst);
        for s in self.state.open.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Limits every connection's server-to-client bytes to
    /// `bytes_per_second` (0 lifts the limit).
    pub fn limit_bandwidth(&self, bytes_per_second: u64) {
        self.state
            .bandwidth
            .store(bytes_per_second, Ordering::SeqCst);
    }

    /// From now on the store hangs: new connections are accepted and never
    /// answered (nor closed); connections open now are closed, so pooled
    /// keep-alive connections cannot bypass it.
    pub fn hang(&self) {
        self.state.hang.store(true, Ordering::SeqCst);
        for s in self.state.open.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Connections accepted and held by [`FaultProxy::hang`] so far.
    pub fn held(&self) -> usize {
        self.state.held.lock().expect("lock").len()
    }

    /// Connections answered 503 so far.
    pub fn failed(&self) -> usize {
        self.state.failed.load(Ordering::SeqCst)
    }

    /// Connections forwarded to the server so far.
    pub fn forwarded(&self) -> usize {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.fail_next(0);
        for s in self.state.held.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

/// Reads one request head and answers 503, closing the connection.
fn slow_down(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = write!(
        conn,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{SLOW_DOWN}",
        SLOW_DOWN.len()
    );
    let _ = conn.shutdown(Shutdown::Both);
}

/// Pipes `conn` to `upstream` both ways until either side closes.
fn forward(conn: TcpStream, upstream: &str, st: &State) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(c2), Ok(s2)) = (conn.try_clone(), server.try_clone()) else {
        return;
    };
    if let (Ok(c3), Ok(s3)) = (conn.try_clone(), server.try_clone()) {
        st.open.lock().expect("lock").extend([c3, s3]);
    }
    st.forwarded.fetch_add(1, Ordering::SeqCst);
    std::thread::spawn(move || pipe(c2, s2));
    match st.bandwidth.load(Ordering::SeqCst) {
        0 => pipe(server, conn),
        limit => throttled_pipe(server, conn, limit),
    }
}

/// `pipe`, at most `bytes_per_second`: chunks of a tenth of a second's
/// worth, each sent on its schedule.
fn throttled_pipe(mut from: TcpStream, mut to: TcpStream, bytes_per_second: u64) {
    let chunk = (bytes_per_second / 10).max(1) as usize;
    let mut buf = vec![0u8; chunk];
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                sent += n as u64;
                let due = Duration::from_secs_f64(sent as f64 / bytes_per_second as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
