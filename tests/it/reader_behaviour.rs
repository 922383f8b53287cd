//! Reader behaviour beyond the happy path, on writable copies of the peer
//! fixtures: fallback to an older manifest, rollback and refresh, refresh
//! atomicity under concurrent searches, LRU eviction with searches in
//! flight, local-cache reuse and re-download, and every error path of the
//! failure matrix.
//!
//! Two publishes share one prefix: the fixture `sqlitevec_cluster_cosine`
//! (older) and `sqlitevec_explicit_cosine` (newer) are copied into the same
//! folder. Both are cosine, dimension 32, and have shards 0..3.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use shardvec::{Error, ErrorKind, HealthStatus, ReaderOptions, SearchOptions, ShardedVectorReader};
use shardvec_core::{SearchResult, ShardId};
use shardvec_e2e::{copy_dir, current_manifest_url, fixtures_dir, write_current};

const OLDER: &str = "sqlitevec_cluster_cosine";
const NEWER: &str = "sqlitevec_explicit_cosine";

struct TwoPublishes {
    _tmp: tempfile::TempDir,
    prefix: PathBuf,
    older_url: String,
    newer_url: String,
}

impl TwoPublishes {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let prefix = tmp.path().join("snap");
        copy_dir(&fixtures_dir().join(OLDER), &prefix);
        copy_dir(&fixtures_dir().join(NEWER), &prefix);
        let s = TwoPublishes {
            prefix,
            older_url: current_manifest_url(OLDER),
            newer_url: current_manifest_url(NEWER),
            _tmp: tmp,
        };
        write_current(&s.prefix, &s.newer_url);
        s
    }

    fn point_at(&self, url: &str) {
        write_current(&self.prefix, url);
    }

    fn manifest_file(&self, url: &str) -> PathBuf {
        let key = shardvec::ObjectManifestStore::manifest_key(url).unwrap();
        self.prefix.join(key)
    }

    fn open(&self, root: &Path, opts: ReaderOptions) -> Result<ShardedVectorReader, Error> {
        ShardedVectorReader::open(self.prefix.to_str().unwrap(), root, opts)
    }
}

fn query() -> Vec<f32> {
    shardvec_e2e::Case::load(OLDER).recorded.queries[0]
        .query
        .clone()
}

fn run_id(url: &str) -> String {
    shardvec_core::ManifestRef::from_url(url).unwrap().run_id
}

#[test]
fn falls_back_to_an_older_manifest_when_the_current_is_corrupt() {
    let s = TwoPublishes::new();
    std::fs::write(
        s.manifest_file(&s.newer_url),
        b"SQLite format 3\0 but not really",
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let r = s.open(root.path(), ReaderOptions::new()).unwrap();
    assert_eq!(r.snapshot_info().unwrap().run_id, run_id(&s.older_url));
    // Searching works on the older snapshot.
    let resp = r.search(&query(), 5, &SearchOptions::new()).unwrap();
    assert_eq!(resp.results.len(), 5);
    assert_eq!(resp.manifest_ref.run_id, run_id(&s.older_url));

    let root = tempfile::tempdir().unwrap();
    match s.open(root.path(), ReaderOptions::new().max_fallback_attempts(0)) {
        Err(Error::Manifest { url, .. }) => assert_eq!(url, s.newer_url),
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

#[test]
fn rollback_and_refresh() {
    let s = TwoPublishes::new();
    s.point_at(&s.older_url);
    let root = tempfile::tempdir().unwrap();
    let r = s.open(root.path(), ReaderOptions::new()).unwrap();
    assert_eq!(r.manifest_ref().unwrap().url, s.older_url);
    assert!(!r.refresh().unwrap(), "nothing changed");

    s.point_at(&s.newer_url);
    assert!(r.refresh().unwrap());
    assert_eq!(r.manifest_ref().unwrap().url, s.newer_url);
    assert_eq!(r.snapshot_info().unwrap().run_id, run_id(&s.newer_url));
    // The newer snapshot is EXPLICIT: routing now needs shard ids.
    assert!(matches!(
        r.search(&query(), 3, &SearchOptions::new()),
        Err(Error::Core(
            shardvec_core::Error::MissingRoutingInput { .. }
        ))
    ));

    // Roll back.
    s.point_at(&s.older_url);
    assert!(r.refresh().unwrap());
    assert_eq!(r.snapshot_info().unwrap().run_id, run_id(&s.older_url));
}

#[test]
fn a_failed_refresh_keeps_serving_the_current_snapshot() {
    let s = TwoPublishes::new();
    let root = tempfile::tempdir().unwrap();
    let r = s.open(root.path(), ReaderOptions::new()).unwrap();
    let before = r
        .search(&query(), 4, &SearchOptions::new().shard_ids([ShardId(1)]))
        .unwrap();

    // `_CURRENT` names a manifest that does not exist.
    let missing = s.newer_url.replace("18:28:05", "18:29:59");
    s.point_at(&missing);
    assert!(matches!(r.refresh(), Err(Error::Store { .. })));
    // A corrupt manifest.
    s.point_at(&s.older_url);
    std::fs::write(s.manifest_file(&s.older_url), b"garbage").unwrap();
    assert!(matches!(r.refresh(), Err(Error::Manifest { .. })));
    // A corrupt `_CURRENT`.
    std::fs::write(s.prefix.join("_CURRENT"), b"{").unwrap();
    assert!(r.refresh().is_err());

    let after = r
        .search(&query(), 4, &SearchOptions::new().shard_ids([ShardId(1)]))
        .unwrap();
    assert_eq!(after.results, before.results);
    assert_eq!(after.manifest_ref.url, s.newer_url);
    assert_eq!(r.health(None).status, HealthStatus::Healthy);
}

#[test]
fn failure_matrix() {
    let s = TwoPublishes::new();
    let root = tempfile::tempdir().unwrap();

    // No `_CURRENT`: reader-state error.
    let empty = tempfile::tempdir().unwrap();
    let none = ShardedVectorReader::open(
        empty.path().to_str().unwrap(),
        root.path(),
        ReaderOptions::new(),
    );
    assert!(matches!(none, Err(Error::NoCurrent(_))));
    assert_eq!(none.unwrap_err().kind(), ErrorKind::NotFound);

    s.point_at(&s.older_url);
    let r = s.open(root.path(), ReaderOptions::new()).unwrap();
    // Dimension mismatch and NaN: config errors.
    assert!(matches!(
        r.search(&[0.5; 31], 3, &SearchOptions::new()),
        Err(Error::Core(shardvec_core::Error::DimensionMismatch {
            expected: 32,
            got: 31
        }))
    ));
    let mut nan = query();
    nan[0] = f32::NAN;
    assert!(matches!(
        r.search(&nan, 3, &SearchOptions::new()),
        Err(Error::Core(shardvec_core::Error::NonFiniteQuery {
            index: 0,
            ..
        }))
    ));
    assert!(matches!(
        r.search(&query(), 0, &SearchOptions::new()),
        Err(Error::InvalidArgument(_))
    ));
    // Every input error is of kind InvalidInput (the host's 400).
    for bad in [
        r.search(&[0.5; 31], 3, &SearchOptions::new()),
        r.search(&nan, 3, &SearchOptions::new()),
        r.search(&query(), 0, &SearchOptions::new()),
        r.search(&query(), 3, &SearchOptions::new().shard_ids([ShardId(99)])),
    ] {
        assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    assert!(matches!(
        r.search(&query(), 3, &SearchOptions::new().shard_ids([ShardId(99)])),
        Err(Error::Core(shardvec_core::Error::ShardOutOfRange {
            id: 99,
            ..
        }))
    ));

    // A shard object deleted after publish: a backend error naming the shard
    // and its URL; other shards keep working.
    let shard2 = std::fs::read_dir(s.prefix.join("shards"))
        .unwrap()
        .map(|e| e.unwrap().path().join("db=00002/attempt=00/shard.db"))
        .find(|p| p.exists() && p.to_str().unwrap().contains(&run_id(&s.older_url)))
        .unwrap();
    std::fs::remove_file(&shard2).unwrap();
    match r.search(&query(), 3, &SearchOptions::new().shard_ids([ShardId(2)])) {
        Err(e @ Error::Backend { .. }) => {
            assert_eq!(e.kind(), ErrorKind::Corrupt);
            let Error::Backend { shard, url, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*shard, ShardId(2));
            assert!(url.contains("db=00002"), "{url}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(r
        .search(&query(), 3, &SearchOptions::new().shard_ids([ShardId(3)]))
        .is_ok());

    // Closed reader: state error.
    r.close();
    assert!(matches!(
        r.search(&query(), 3, &SearchOptions::new()),
        Err(Error::Closed)
    ));
    assert_eq!(
        r.search(&query(), 3, &SearchOptions::new())
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
    assert!(matches!(r.snapshot_info(), Err(Error::Closed)));
    assert_eq!(r.health(None).status, HealthStatus::Unhealthy);
}

fn inode(path: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.ino(), m.modified().unwrap())
}

#[test]
fn local_cache_is_reused_and_refreshed_when_stale_or_damaged() {
    let s = TwoPublishes::new();
    s.point_at(&s.older_url);
    let root = tempfile::tempdir().unwrap();
    let opts = SearchOptions::new().shard_ids([ShardId(0)]);
    let r1 = s.open(root.path(), ReaderOptions::new()).unwrap();
    let want = r1.search(&query(), 5, &opts).unwrap().results;
    let versions = |root: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(root.join("shard_00000"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect()
    };
    let version = match versions(root.path()).as_slice() {
        [one] => one.clone(),
        other => panic!("expected one cached version, found {other:?}"),
    };
    let cached = version.join("shard.db");
    let first = inode(&cached);

    // A second reader on the same root re-uses the file.
    let r2 = s.open(root.path(), ReaderOptions::new()).unwrap();
    assert_eq!(r2.search(&query(), 5, &opts).unwrap().results, want);
    assert_eq!(inode(&cached), first, "cached shard was not re-downloaded");

    // A truncated cached file is detected and downloaded again.
    let len = std::fs::metadata(&cached).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cached)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let r3 = s.open(root.path(), ReaderOptions::new()).unwrap();
    assert_eq!(r3.search(&query(), 5, &opts).unwrap().results, want);
    assert_eq!(std::fs::metadata(&cached).unwrap().len(), len);

    // A different identity (another checkpoint) is downloaded again.
    let id_file = version.join("identity.json");
    let id = std::fs::read_to_string(&id_file).unwrap();
    std::fs::write(
        &id_file,
        id.replace("checkpoint_id\":\"", "checkpoint_id\":\"old-"),
    )
    .unwrap();
    let before = inode(&cached);
    let r4 = s.open(root.path(), ReaderOptions::new()).unwrap();
    assert_eq!(r4.search(&query(), 5, &opts).unwrap().results, want);
    assert_ne!(inode(&cached), before, "stale identity must re-download");
    assert_eq!(std::fs::read_to_string(&id_file).unwrap(), id);
    assert_eq!(
        versions(root.path()),
        vec![version.clone()],
        "one version left"
    );

    // A reader keeps the bytes it opened while the cache replaces them:
    // the cached file disappears under an open reader, a new reader
    // downloads it again, and the old reader still answers from its file.
    std::fs::remove_file(&cached).unwrap();
    let r5 = s.open(root.path(), ReaderOptions::new()).unwrap();
    assert_eq!(r5.search(&query(), 5, &opts).unwrap().results, want);
    assert_eq!(r4.search(&query(), 5, &opts).unwrap().results, want);
}

/// Expected results of one query on each snapshot, from a reader of each.
fn expected(
    s: &TwoPublishes,
    ids: &[ShardId],
    q: &[f32],
) -> (Vec<SearchResult>, Vec<SearchResult>) {
    let opts = SearchOptions::new().shard_ids(ids.to_vec());
    let root = tempfile::tempdir().unwrap();
    s.point_at(&s.older_url);
    let old = s
        .open(root.path(), ReaderOptions::new())
        .unwrap()
        .search(q, 10, &opts)
        .unwrap()
        .results;
    let root = tempfile::tempdir().unwrap();
    s.point_at(&s.newer_url);
    let new = s
        .open(root.path(), ReaderOptions::new())
        .unwrap()
        .search(q, 10, &opts)
        .unwrap()
        .results;
    assert_ne!(old, new, "the two snapshots must answer differently");
    (old, new)
}

#[test]
fn refresh_is_atomic_under_concurrent_searches() {
    let s = TwoPublishes::new();
    let ids = [ShardId(0), ShardId(1), ShardId(2)];
    let q = query();
    let (old, new) = expected(&s, &ids, &q);
    s.point_at(&s.older_url);
    let root = tempfile::tempdir().unwrap();
    let r = Arc::new(s.open(root.path(), ReaderOptions::new()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(0));
    let older_run = run_id(&s.older_url);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (r, stop, seen) = (r.clone(), stop.clone(), seen.clone());
            let (q, old, new, older_run) = (q.clone(), old.clone(), new.clone(), older_run.clone());
            std::thread::spawn(move || {
                let opts = SearchOptions::new().shard_ids(ids.to_vec());
                while !stop.load(Ordering::Relaxed) {
                    let resp = r.search(&q, 10, &opts).unwrap();
                    // Results always belong to the manifest the response names.
                    let want = if resp.manifest_ref.run_id == older_run {
                        &old
                    } else {
                        &new
                    };
                    assert_eq!(&resp.results, want);
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for i in 0..20 {
        s.point_at(if i % 2 == 0 {
            &s.newer_url
        } else {
            &s.older_url
        });
        assert!(r.refresh().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a searching thread failed");
    }
    assert!(seen.load(Ordering::Relaxed) > 0);
}

#[test]
fn lru_eviction_with_searches_in_flight() {
    let s = TwoPublishes::new();
    s.point_at(&s.older_url);
    let q = query();
    let root = tempfile::tempdir().unwrap();
    let full = s.open(root.path(), ReaderOptions::new()).unwrap();
    let want: Vec<Vec<SearchResult>> = (0..4)
        .map(|i| {
            full.search(&q, 10, &SearchOptions::new().shard_ids([ShardId(i)]))
                .unwrap()
                .results
        })
        .collect();
    let r = Arc::new(
        s.open(
            root.path(),
            ReaderOptions::new().max_cached_shards(NonZeroUsize::new(1).unwrap()),
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let (r, q, want) = (r.clone(), q.clone(), want.clone());
            std::thread::spawn(move || {
                for i in 0..40u32 {
                    let shard = (t + i) % 4;
                    let opts = SearchOptions::new().shard_ids([ShardId(shard)]);
                    assert_eq!(
                        r.search(&q, 10, &opts).unwrap().results,
                        want[shard as usize]
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a searching thread failed");
    }
}

#[derive(Debug, Default)]
struct Counting {
    searches: AtomicUsize,
    errors: AtomicUsize,
    hits: AtomicUsize,
    misses: AtomicUsize,
    opened: AtomicUsize,
    refreshes: AtomicUsize,
}

impl shardvec::metrics::Metrics for Counting {
    fn search(&self, e: &shardvec::metrics::SearchEvent) {
        assert!(e.num_results <= e.top_k);
        self.searches.fetch_add(1, Ordering::SeqCst);
    }
    fn error(&self, _e: &Error) {
        self.errors.fetch_add(1, Ordering::SeqCst);
    }
    fn shard_cache(&self, _s: ShardId, hit: bool) {
        let c = if hit { &self.hits } else { &self.misses };
        c.fetch_add(1, Ordering::SeqCst);
    }
    fn shard_opened(
        &self,
        _s: ShardId,
        kind: shardvec::backend::BackendKind,
        _t: std::time::Duration,
    ) {
        assert_eq!(kind, shardvec::backend::BackendKind::SqliteVec);
        self.opened.fetch_add(1, Ordering::SeqCst);
    }
    fn refreshed(&self, _m: &shardvec_core::ManifestRef) {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn metrics_hook_sees_searches_opens_cache_hits_and_refreshes() {
    let s = TwoPublishes::new();
    s.point_at(&s.older_url);
    let m = Arc::new(Counting::default());
    let root = tempfile::tempdir().unwrap();
    let r = s
        .open(root.path(), ReaderOptions::new().metrics(m.clone()))
        .unwrap();
    let opts = SearchOptions::new().shard_ids([ShardId(0), ShardId(1)]);
    for _ in 0..3 {
        r.search(&query(), 5, &opts).unwrap();
    }
    assert!(r.search(&[0.0; 3], 5, &opts).is_err());
    assert_eq!(m.searches.load(Ordering::SeqCst), 3);
    assert_eq!(m.errors.load(Ordering::SeqCst), 1);
    assert_eq!(m.opened.load(Ordering::SeqCst), 2, "each shard opened once");
    assert_eq!(m.misses.load(Ordering::SeqCst), 2);
    assert_eq!(m.hits.load(Ordering::SeqCst), 4);
    s.point_at(&s.newer_url);
    assert!(r.refresh().unwrap());
    assert_eq!(m.refreshes.load(Ordering::SeqCst), 1);
}

#[test]
fn rate_limit_paces_searches() {
    let s = TwoPublishes::new();
    s.point_at(&s.older_url);
    let root = tempfile::tempdir().unwrap();
    let r = s
        .open(
            root.path(),
            ReaderOptions::new().rate_limit(20.0, 2).unwrap(),
        )
        .unwrap();
    let opts = SearchOptions::new().shard_ids([ShardId(0)]);
    let started = std::time::Instant::now();
    for _ in 0..8 {
        r.search(&query(), 5, &opts).unwrap();
    }
    // 2 from the burst, then 6 at 20 a second: at least 0.3 s. (A lower
    // bound only: the limiter must hold searches back; speed is measured
    // in benchmarks, not here.)
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
}
