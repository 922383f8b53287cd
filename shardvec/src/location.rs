//! Where a snapshot lives: an object store and a base path inside it.
//!
//! [`SnapshotLocation::open`] accepts `s3://bucket/prefix`, `gs://…`,
//! `az://…` (and the other Azure URL forms object_store knows),
//! `file:///abs/path`, plain local paths and `memory://` (an empty in-memory
//! store; use [`SnapshotLocation::from_store`] to hand in a filled one).
//! Cloud credentials and endpoints come from [`StoreOptions`] and the
//! standard environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
//!
//! URLs recorded inside a snapshot start with the prefix the writer used;
//! [`SnapshotLocation::resolve`] maps them onto this location, so copies of a
//! snapshot in another bucket or on disk read the same.

use std::str::FromStr;
use std::sync::Arc;

use object_store::path::Path;
use object_store::ObjectStore;
use url::Url;

use crate::error::{Error, Result};

/// Options of the object store, as `(key, value)` pairs understood by the
/// scheme's builder (`aws_endpoint`, `aws_region`, `aws_access_key_id`,
/// `aws_secret_access_key`, `allow_http`, `google_service_account`, …).
/// Keys a scheme does not know are ignored. Builder methods cover the usual
/// S3 settings. Default: none (environment variables only).
/// `Debug` shows every key but the values of secrets (see
/// [`StoreOptions::is_secret`]).
#[derive(Clone, Default)]
pub struct StoreOptions {
    pairs: Vec<(String, String)>,
    retry: Option<object_store::RetryConfig>,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Pairs<'a>(&'a [(String, String)]);
        impl std::fmt::Debug for Pairs<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, v)| {
                        let shown = if StoreOptions::is_secret(k) {
                            "<redacted>"
                        } else {
                            v.as_str()
                        };
                        (k, shown)
                    }))
                    .finish()
            }
        }
        f.debug_struct("StoreOptions")
            .field("options", &Pairs(&self.pairs))
            .field("retry", &self.retry)
            .finish()
    }
}

impl StoreOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the value of option `key` is a secret, never shown by
    /// `Debug`: any key naming a secret, key, token, password, credential,
    /// session, signature or service account.
    pub fn is_secret(key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        [
            "secret",
            "key",
            "token",
            "password",
            "credential",
            "session",
            "sas",
            "signature",
            "service_account",
        ]
        .iter()
        .any(|word| key.contains(word))
    }

    /// Sets any option key.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((key.into(), value.into()));
        self
    }

    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000`.
    pub fn endpoint(self, url: impl Into<String>) -> Self {
        self.option("aws_endpoint", url)
    }

    /// S3 region.
    pub fn region(self, region: impl Into<String>) -> Self {
        self.option("aws_region", region)
    }

    /// Static S3 credentials.
    pub fn credentials(self, key_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.option("aws_access_key_id", key_id)
            .option("aws_secret_access_key", secret)
    }

    /// Allows plain-HTTP endpoints (local S3 servers).
    pub fn allow_http(self, allow: bool) -> Self {
        self.option("allow_http", allow.to_string())
    }

    /// Retries of failed requests (connection errors, timeouts, 5xx and
    /// 429 answers): at most `max_retries`, giving up after `timeout` in
    /// all. Default: object_store's, 10 retries within 3 minutes.
    pub fn retry(mut self, max_retries: usize, timeout: std::time::Duration) -> Self {
        let retry = self.retry.get_or_insert_with(Default::default);
        retry.max_retries = max_retries;
        retry.retry_timeout = timeout;
        self
    }

    /// Backoff between retries: exponential from `initial`, doubling, at
    /// most `max`, with jitter. Default: object_store's, 100 ms doubling to
    /// 15 s.
    pub fn retry_backoff(mut self, initial: std::time::Duration, max: std::time::Duration) -> Self {
        let retry = self.retry.get_or_insert_with(Default::default);
        retry.backoff = object_store::BackoffConfig {
            init_backoff: initial,
            max_backoff: max.max(initial),
            base: 2.0,
        };
        self
    }

    /// The pairs, in the order set.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// An object store and the snapshot's base path in it.
#[derive(Debug, Clone)]
pub struct SnapshotLocation {
    store: Arc<dyn ObjectStore>,
    base: Path,
    url: String,
}

macro_rules! configured {
    ($builder:expr, $key_ty:ty, $opts:expr) => {{
        let mut b = $builder;
        if let Some(retry) = &$opts.retry {
            b = b.with_retry(retry.clone());
        }
        for (k, v) in $opts.pairs() {
            if let Ok(key) = <$key_ty>::from_str(&k.to_ascii_lowercase()) {
                b = b.with_config(key, v.clone());
            }
        }
        b
    }};
}

impl SnapshotLocation {
    /// Opens the store behind `prefix` (a URL or a local path).
    pub fn open(prefix: &str, opts: &StoreOptions) -> Result<SnapshotLocation> {
        let invalid = |reason: String| Error::InvalidLocation {
            url: prefix.to_string(),
            reason,
        };
        let url = match Url::parse(prefix) {
            Ok(u) if u.scheme().len() > 1 => u,
            // No scheme (or a Windows drive letter): a local path.
            _ => {
                // `..` segments are resolved (object-store paths refuse them).
                let p = std::fs::canonicalize(prefix)
                    .or_else(|_| std::path::absolute(prefix))
                    .map_err(|e| invalid(e.to_string()))?;
                Url::from_directory_path(&p).map_err(|_| invalid("not an absolute path".into()))?
            }
        };
        let trimmed = url.as_str().trim_end_matches('/').to_string();
        let scheme = url.scheme();
        let (store, base): (Arc<dyn ObjectStore>, Path) = match (scheme, Cloud::of(scheme)) {
            ("file", _) => {
                let path = url
                    .to_file_path()
                    .map_err(|_| invalid("not a local file URL".into()))?;
                let base = Path::from_absolute_path(&path).map_err(|e| invalid(e.to_string()))?;
                (Arc::new(object_store::local::LocalFileSystem::new()), base)
            }
            ("memory", _) => (
                Arc::new(object_store::memory::InMemory::new()),
                Path::parse(url.path()).map_err(|e| invalid(e.to_string()))?,
            ),
            #[cfg(feature = "aws")]
            (_, Some(Cloud::Aws)) => {
                let b = configured!(
                    object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str()),
                    object_store::aws::AmazonS3ConfigKey,
                    opts
                );
                let store = b.build().map_err(|e| invalid(e.to_string()))?;
                (
                    Arc::new(store),
                    Path::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?,
                )
            }
            #[cfg(feature = "gcp")]
            (_, Some(Cloud::Gcp)) => {
                let b = configured!(
                    object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url.as_str()),
                    object_store::gcp::GoogleConfigKey,
                    opts
                );
                let store = b.build().map_err(|e| invalid(e.to_string()))?;
                (
                    Arc::new(store),
                    Path::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?,
                )
            }
            #[cfg(feature = "azure")]
            (_, Some(Cloud::Azure)) => {
                let b = configured!(
                    object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url.as_str()),
                    object_store::azure::AzureConfigKey,
                    opts
                );
                let store = b.build().map_err(|e| invalid(e.to_string()))?;
                let (_, path) = object_store::ObjectStoreScheme::parse(&url)
                    .map_err(|e| invalid(e.to_string()))?;
                (
                    Arc::new(store),
                    Path::parse(path).map_err(|e| invalid(e.to_string()))?,
                )
            }
            #[allow(unreachable_patterns)]
            (_, Some(cloud)) => {
                return Err(invalid(format!(
                    "`{scheme}://` needs the cargo feature `{}` of shardvec, \
                     which this build does not have",
                    cloud.feature()
                )))
            }
            (other, None) => return Err(invalid(format!("unsupported scheme `{other}`"))),
        };
        Ok(SnapshotLocation {
            store,
            base,
            url: trimmed,
        })
    }

    /// A location in a store the caller built (e.g. a filled `InMemory`).
    /// `url` is what messages and `display_url` show as the prefix.
    pub fn from_store(store: Arc<dyn ObjectStore>, base: Path, url: impl Into<String>) -> Self {
        SnapshotLocation {
            store,
            base,
            url: url.into().trim_end_matches('/').to_string(),
        }
    }

    /// The same location read through another store (an adapter around
    /// this one's, such as a counting or throttling store).
    pub fn with_store(&self, store: Arc<dyn ObjectStore>) -> Self {
        SnapshotLocation {
            store,
            base: self.base.clone(),
            url: self.url.clone(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The snapshot prefix as a URL (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store path of `key` (relative to the prefix, `/`-separated).
    pub fn path(&self, key: &str) -> Path {
        let mut p = self.base.clone();
        for part in key.split('/').filter(|s| !s.is_empty()) {
            p = p.join(part);
        }
        p
    }

    /// The URL of `key`, for messages.
    pub fn display_url(&self, key: &str) -> String {
        format!("{}/{}", self.url, key.trim_start_matches('/'))
    }

    /// Every object under `key`, as keys relative to the prefix with their
    /// sizes (for backend detection and multi-file shard downloads).
    pub async fn list(&self, key: &str) -> Result<Vec<(String, u64)>> {
        use futures::TryStreamExt;
        let base = self.path(key);
        let prefix = self.path("");
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| Error::store("list", self.display_url(key), e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let rel: Vec<_> = m
                    .location
                    .prefix_match(&prefix)?
                    .map(|p| p.as_ref().to_string())
                    .collect();
                Some((rel.join("/"), m.size))
            })
            .collect())
    }

    /// Maps a URL recorded in the snapshot onto this location: it must start
    /// with `recorded_prefix` (the manifest's `s3_prefix`) or with this
    /// location's own URL. Returns the key relative to the prefix.
    pub fn resolve(&self, recorded_url: &str, recorded_prefix: &str) -> Result<String> {
        // The rules (and their reasons) are the core's, shared with wasm.
        shardvec_core::resolve::resolve_key(recorded_url, recorded_prefix, &self.url)
            .map(str::to_string)
            .ok_or_else(|| Error::ForeignUrl {
                url: recorded_url.to_string(),
                prefix: recorded_prefix.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_recorded_urls_against_the_opened_prefix() {
        let loc = SnapshotLocation::open("memory:///copy", &StoreOptions::new()).unwrap();
        let rel = loc
            .resolve("s3://fixtures/case/shards/db=00000", "s3://fixtures/case")
            .unwrap();
        assert_eq!(rel, "shards/db=00000");
        assert_eq!(loc.path(&rel).as_ref(), "copy/shards/db=00000");
        assert!(loc
            .resolve("s3://other/case/x", "s3://fixtures/case")
            .is_err());
        assert!(loc
            .resolve("s3://fixtures/casex/x", "s3://fixtures/case")
            .is_err());
        assert!(loc
            .resolve("s3://fixtures/case/../x", "s3://fixtures/case")
            .is_err());
        assert!(loc
            .resolve("s3://fixtures/case/%2e%2e/x", "s3://fixtures/case")
            .is_err());
        assert_eq!(loc.resolve("memory:///copy/a", "s3://b/p").unwrap(), "a");
    }

    #[test]
    fn plain_paths_are_local_files() {
        let loc = SnapshotLocation::open("/tmp/some/dir", &StoreOptions::new()).unwrap();
        assert_eq!(loc.url(), "file:///tmp/some/dir");
        assert_eq!(loc.path("a/b").as_ref(), "tmp/some/dir/a/b");
    }
}

/// The cloud stores: which URL schemes each serves, and the cargo feature
/// that compiles it in (the one list of both).
#[derive(Debug, Clone, Copy)]
enum Cloud {
    Aws,
    Gcp,
    Azure,
}

impl Cloud {
    fn of(scheme: &str) -> Option<Cloud> {
        match scheme {
            "s3" | "s3a" => Some(Cloud::Aws),
            "gs" => Some(Cloud::Gcp),
            "az" | "adl" | "azure" | "abfs" | "abfss" => Some(Cloud::Azure),
            _ => None,
        }
    }

    fn feature(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Gcp => "gcp",
            Cloud::Azure => "azure",
        }
    }
}

#[cfg(test)]
mod debug_tests {
    use super::StoreOptions;

    #[test]
    fn debug_never_shows_secrets() {
        let o = StoreOptions::new()
            .endpoint("http://127.0.0.1:9000")
            .credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-secret")
            .option("aws_session_token", "session-secret")
            .option("azure_storage_sas_key", "sas-secret");
        let shown = format!("{o:?}");
        for secret in [
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI-secret",
            "session-secret",
            "sas-secret",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("http://127.0.0.1:9000"), "{shown}");
        assert!(shown.contains("aws_secret_access_key"), "{shown}");
    }
}
