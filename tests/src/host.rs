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

/// Resident set size of this process in KiB, from `/proc/self/status`.
/// Panics when it cannot be read: a memory check must fail, not pass with
/// 0, where `/proc` is missing (another OS, a sandbox).
pub fn rss_kib() -> u64 {
    rss_kib_at(std::path::Path::new("/proc/self/status"))
}

/// The `VmRSS` (KiB) of a `/proc/<pid>/status` file; panics naming the
/// file when it cannot be read or has no `VmRSS` line.
pub fn rss_kib_at(status: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(status).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (RSS checks need Linux's /proc)",
            status.display()
        )
    });
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS line in {}", status.display()))
}

/// Open file descriptors of this process, from `/proc/self/fd`. Panics
/// when it cannot be read (an fd check must fail, not pass with 0).
pub fn open_fds() -> usize {
    open_fds_in(std::path::Path::new("/proc/self/fd"))
}

/// The entries of a `/proc/<pid>/fd` folder; panics naming it when it
/// cannot be read or is empty (a process has at least one descriptor: the
/// folder's own, while it is read).
pub fn open_fds_in(dir: &std::path::Path) -> usize {
    let n = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e} (fd checks need Linux's /proc)",
                dir.display()
            )
        })
        .count();
    assert!(n > 0, "{} lists no descriptors", dir.display());
    n
}

/// The `error.code` of an error answer.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// A real `shardvec serve` process on 127.0.0.1, its address read from
/// its `listening on http://...` line. Its later stdout lines are kept
/// (read by a thread, so the process never writes to a closed pipe).
pub struct ServeProcess {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Starts `shardvec serve` on `prefix` with `root` as its local root
    /// and the `extra` arguments.
    pub fn start(prefix: &str, root: &std::path::Path, extra: &[&str]) -> ServeProcess {
        Self::start_with_env(prefix, root, extra, &[])
    }

    /// [`ServeProcess::start`] with environment variables set (`AWS_*`).
    pub fn start_with_env(
        prefix: &str,
        root: &std::path::Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServeProcess {
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
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for l in out.lines() {
                let Ok(l) = l else { break };
                lines.lock().unwrap().push(l);
            }
        });
        ServeProcess {
            child,
            addr,
            stdout,
        }
    }

    /// The stdout lines after the `listening on` line, so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readings_work_here() {
        assert!(rss_kib() > 0);
        assert!(open_fds() >= 3);
    }

    #[test]
    #[should_panic(expected = "cannot read /proc/self/no-such-status")]
    fn rss_fails_when_proc_cannot_be_read() {
        rss_kib_at(std::path::Path::new("/proc/self/no-such-status"));
    }

    #[test]
    #[should_panic(expected = "no VmRSS line")]
    fn rss_fails_without_a_vmrss_line() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "Name:\tx\nVmSize:\t100 kB\n").unwrap();
        rss_kib_at(f.path());
    }

    #[test]
    #[should_panic(expected = "cannot read /proc/self/no-such-fd")]
    fn fds_fail_when_proc_cannot_be_read() {
        open_fds_in(std::path::Path::new("/proc/self/no-such-fd"));
    }

    #[test]
    #[should_panic(expected = "lists no descriptors")]
    fn fds_fail_on_an_empty_listing() {
        let d = tempfile::tempdir().unwrap();
        open_fds_in(d.path());
    }
}
