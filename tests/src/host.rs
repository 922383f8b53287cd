//! Host servers (`shardvec_host`) started in-process on 127.0.0.1 for the
//! tests, and small HTTP helpers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use shardvec::{AsyncShardedVectorReader, ReaderOptions};
use shardvec_host::{Host, HostMetrics, HostOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running host; stops when dropped (or by [`TestHost::shutdown`]).
pub struct TestHost {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The host (its reader, `refresh`).
    pub host: Host,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _root: tempfile::TempDir,
}

impl TestHost {
    /// Opens `prefix` with an empty local cache and serves it.
    pub async fn start(prefix: &str, opts: HostOptions) -> TestHost {
        let metrics = Arc::new(HostMetrics::default());
        let root = tempfile::tempdir().expect("tempdir");
        let reader = AsyncShardedVectorReader::open(
            prefix,
            root.path(),
            ReaderOptions::new().metrics(metrics.clone()),
        )
        .await
        .unwrap_or_else(|e| panic!("open {prefix}: {e}"));
        Self::serve(reader, opts, metrics, root).await
    }

    /// Serves an already open reader.
    pub async fn serve(
        reader: AsyncShardedVectorReader,
        opts: HostOptions,
        metrics: Arc<HostMetrics>,
        root: tempfile::TempDir,
    ) -> TestHost {
        let host = Host::new(reader, opts, metrics).expect("host options");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(host.clone().serve(listener, async {
            let _ = rx.await;
        }));
        TestHost {
            url,
            host,
            stop: Some(tx),
            task: Some(task),
            _root: root,
        }
    }

    /// Asks for a graceful shutdown and returns the serve task.
    pub fn shutdown(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("serve task")
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// POSTs JSON; returns the status and the JSON answer.
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    answer("POST", url, client.post(url).json(body)).await
}

/// GETs; returns the status and the JSON answer.
pub async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    answer("GET", url, client.get(url)).await
}

/// Sends; the status and the body as JSON (or as a JSON string if it is
/// not JSON).
async fn answer(method: &str, url: &str, req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

/// Resident set size of this process in KiB (Linux; 0 elsewhere).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The `error.code` of an error answer.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// A real `shardvec serve` process on 127.0.0.1, its address read from
/// its `listening on http://...` line.
pub struct ServeProcess {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl ServeProcess {
    /// Starts `shardvec serve` on `prefix` with `root` as its local root
    /// and the `extra` arguments.
    pub fn start(prefix: &str, root: &std::path::Path, extra: &[&str]) -> ServeProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(crate::shardvec_bin())
            .args([
                "serve",
                "--prefix",
                prefix,
                "--listen",
                "127.0.0.1:0",
                "--local-root",
            ])
            .arg(root)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        ServeProcess { child, addr }
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits up to `limit` for the process to exit.
    pub fn exits_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
