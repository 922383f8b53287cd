//! A real S3-compatible server on 127.0.0.1 for the tests: moto's server
//! mode (`python3 -m moto.server`, PyPI `moto[server]`, installed by
//! `scripts/setup.sh`). Started on a free port, stopped when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use shardvec::StoreOptions;

/// Test credentials (moto accepts any).
pub const KEY_ID: &str = "testing";
/// Test secret.
pub const SECRET: &str = "testing";
/// Region used throughout.
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl S3Server {
    /// Starts a server and waits until it answers.
    pub fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self::start_on(port)
    }

    /// Stops the server (an outage: connections are refused). Its data is
    /// lost (moto keeps it in memory).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh server on the same port after [`S3Server::stop`].
    pub fn restart(&mut self) {
        let port = self
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        let mut fresh = Self::start_on(port);
        // `fresh` leaves with the old (stopped) child.
        std::mem::swap(&mut self.child, &mut fresh.child);
    }

    fn start_on(port: u16) -> S3Server {
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto (pip install 'moto[server]'; scripts/setup.sh does)");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.raw("GET", "/").is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// One plain HTTP request (bucket creation needs no signing in moto).
    fn raw(&self, method: &str, path: &str) -> std::io::Result<String> {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        if out.starts_with("HTTP/1.1 2") || out.starts_with("HTTP/1.0 2") {
            Ok(out)
        } else {
            Err(std::io::Error::other(out))
        }
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.raw("PUT", &format!("/{bucket}"))
            .expect("create bucket");
    }

    /// Store options that reach this server.
    pub fn options(&self) -> StoreOptions {
        StoreOptions::new()
            .endpoint(self.endpoint.clone())
            .region(REGION)
            .credentials(KEY_ID, SECRET)
            .allow_http(true)
    }

    /// An object store on `bucket`.
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_endpoint(&self.endpoint)
                .with_region(REGION)
                .with_access_key_id(KEY_ID)
                .with_secret_access_key(SECRET)
                .with_allow_http(true)
                .build()
                .expect("S3 store"),
        )
    }

    /// Uploads every file under `dir` to `bucket` under `prefix`.
    pub async fn upload_dir(&self, dir: &Path, bucket: &str, prefix: &str) -> usize {
        let store = self.store(bucket);
        let mut n = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let rel = p
                    .strip_prefix(dir)
                    .expect("under dir")
                    .to_str()
                    .expect("utf-8");
                let key = ObjPath::from(format!("{prefix}/{rel}"));
                let bytes = std::fs::read(&p).expect("read file");
                store
                    .put(&key, PutPayload::from(bytes))
                    .await
                    .expect("upload");
                n += 1;
            }
        }
        n
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
