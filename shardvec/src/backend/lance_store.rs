//! Our object store, handed to Lance.
//!
//! Remote LanceDB search ([`LanceMode::Remote`](super::lancedb::LanceMode))
//! reads a shard's dataset where it lives. Lance opens stores through a
//! registry keyed by URL scheme; its `s3`, `gs` and `az` providers need
//! lancedb's cloud features, which would compile a second, slower S3 stack
//! next to the `object_store` client the reader already configured (endpoint,
//! credentials, retries). Instead, every remote shard gets a
//! [`lancedb::Session`] whose registry maps the private scheme
//! [`SCHEME`] to the reader's own store, and the dataset is opened at
//! `shardvec-store://snapshot/<object path>`. Lance and the reader then share
//! one client, one configuration and one set of error messages.

use std::collections::HashMap;
use std::sync::Arc;

use lance_io::object_store::{ObjectStore as LanceStore, ObjectStoreParams, ObjectStoreProvider};
use object_store::path::Path;
use object_store::ObjectStore;
use url::Url;

/// The URL scheme under which Lance sees the reader's store.
pub const SCHEME: &str = "shardvec-store";

/// Lance's block size for stores reached over the network (its own default
/// for cloud stores).
const BLOCK_SIZE: usize = 64 * 1024;
/// Concurrent reads Lance may issue (its cloud default).
const IO_PARALLELISM: usize = 64;

/// Hands one `object_store` to Lance.
#[derive(Debug)]
struct StoreProvider {
    store: Arc<dyn ObjectStore>,
}

#[async_trait::async_trait]
impl ObjectStoreProvider for StoreProvider {
    async fn new_store(
        &self,
        base_path: Url,
        params: &ObjectStoreParams,
    ) -> lance_core::Result<LanceStore> {
        Ok(LanceStore::new(
            self.store.clone(),
            base_path,
            Some(params.block_size.unwrap_or(BLOCK_SIZE)),
            None,
            false,
            // Object stores list in lexical order; local file systems do not.
            !self.store.to_string().starts_with("LocalFileSystem"),
            IO_PARALLELISM,
            // Retries are the store's own (StoreOptions::retry).
            0,
            params.storage_options(),
        ))
    }

    fn calculate_object_store_prefix(
        &self,
        _url: &Url,
        _storage_options: Option<&HashMap<String, String>>,
    ) -> lance_core::Result<String> {
        // One store per session, so one prefix.
        Ok(SCHEME.to_string())
    }
}

/// A Lance session that reaches `store` under [`SCHEME`], and the URL of
/// `dir` (a folder in that store) to connect to.
pub fn session_for(store: Arc<dyn ObjectStore>, dir: &Path) -> (Arc<lancedb::Session>, String) {
    let registry = lancedb::ObjectStoreRegistry::default();
    registry.insert(SCHEME, Arc::new(StoreProvider { store }));
    let session = lancedb::Session::new(
        // Lance's defaults (6 GiB index cache, 1 GiB metadata cache): upper
        // bounds, not allocations.
        6 << 30,
        1 << 30,
        Arc::new(registry),
    );
    (Arc::new(session), dir_url(dir))
}

/// `shardvec-store://snapshot/<dir>`, each path part a percent-encoded URL
/// segment (Lance decodes them back with `Path::from_url_path`).
fn dir_url(dir: &Path) -> String {
    let mut url = Url::parse(&format!("{SCHEME}://snapshot/")).expect("static URL is valid");
    if let Ok(mut segs) = url.path_segments_mut() {
        segs.pop_if_empty();
        segs.extend(dir.parts().map(|p| p.as_ref().to_string()));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_urls_round_trip_through_lances_path_decoding() {
        for dir in [
            "a/b/vector_index",
            "fix tures/case 1/db=00001",
            "x/ünï/ç%25",
        ] {
            let path = Path::parse(dir).unwrap();
            let url = Url::parse(&dir_url(&path)).unwrap();
            assert_eq!(url.scheme(), SCHEME);
            assert_eq!(Path::from_url_path(url.path()).unwrap(), path, "{dir}");
        }
    }
}
