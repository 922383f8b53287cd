//! The local shard cache across opens, refreshes and processes (issue 15,
//! items 5, 6 and 7): what is downloaded again and what is not, what is
//! pruned and when, handles carried over a refresh, prefetching before a
//! swap. Real processes (`shardvec serve`, `shardvec search`) share one
//! `local_root` where an item is about several processes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shardvec::backend::BackendKind;
use shardvec::metrics::Metrics;
use shardvec::{AsyncShardedVectorReader, ReaderOptions, SearchOptions, ShardedVectorReader};
use shardvec_core::ShardId;
use shardvec_e2e::host::{post, ServeProcess};
use shardvec_e2e::{
    assert_same_results, copy_dir, current_manifest_url, files_under, fixtures_dir, shardvec_bin,
    two_publishes, write_current, Case,
};

fn only(ids: &[u32]) -> SearchOptions {
    SearchOptions::new().shard_ids(ids.iter().copied().map(ShardId).collect::<Vec<_>>())
}

fn query(case: &str) -> Vec<f32> {
    Case::load(case).recorded.queries[0].query.clone()
}

/// The cached versions (`v-*` folders) of shard `sid` under `root`.
fn versions(root: &Path, sid: u32) -> Vec<PathBuf> {
    let dir = root.join(format!("shard_{sid:05}"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("v-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

/// Item 7: a cached copy that fails to open for a reason other than
/// damage — here SQLite's lock, held by another connection, so the open
/// fails with SQLITE_BUSY as it would for want of file descriptors or
/// memory — is kept: the search fails with that error, nothing is moved
/// aside or downloaded again, and once the lock is gone the same copy
/// serves. (Before: any open error discarded the copy and downloaded it.)
#[test]
fn a_copy_failing_to_open_for_a_lock_is_kept_not_downloaded_again() {
    const CASE: &str = "sqlitevec_cluster_cosine";
    let prefix = fixtures_dir().join(CASE);
    let root = tempfile::tempdir().unwrap();
    let q = query(CASE);
    let want = {
        let r =
            ShardedVectorReader::open(prefix.to_str().unwrap(), root.path(), ReaderOptions::new())
                .unwrap();
        r.search(&q, 10, &only(&[0])).unwrap().results
    };
    let cached = versions(root.path(), 0);
    assert_eq!(cached.len(), 1);
    let ino = inode(&cached[0]);

    let locker = rusqlite::Connection::open(cached[0].join("shard.db")).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = ShardedVectorReader::open(prefix.to_str().unwrap(), root.path(), ReaderOptions::new())
        .unwrap();
    let err = r.search(&q, 10, &only(&[0])).unwrap_err();
    assert!(format!("{err:?}").contains("DatabaseBusy"), "{err:?}");
    assert_eq!(versions(root.path(), 0), cached, "the copy was replaced");
    assert_eq!(inode(&cached[0]), ino, "the copy was downloaded again");
    let aside: Vec<_> = std::fs::read_dir(root.path().join("shard_00000"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".old-"))
        .collect();
    assert!(aside.is_empty(), "moved aside: {aside:?}");

    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    let got = r.search(&q, 10, &only(&[0])).unwrap().results;
    assert_same_results("after the lock", &got, &want);
    assert_eq!(inode(&cached[0]), ino);
}

/// Item 6: a damaged LanceDB copy (its version manifests overwritten with
/// garbage of the same size, so the size check passes) is detected at
/// open and downloaded again, like a sqlite-vec copy. (Before: it failed
/// at every open, forever.) The copy is made by another process, so no
/// cache of Lance's in this one has seen the good bytes.
#[test]
fn a_damaged_lancedb_copy_is_downloaded_again() {
    const CASE: &str = "lancedb_cluster_l2";
    let case = Case::load(CASE);
    let root = tempfile::tempdir().unwrap();
    let q = query(CASE);
    let out = std::process::Command::new(shardvec_bin())
        .args(["search", "--prefix", case.dir.to_str().unwrap()])
        .arg("--local-root")
        .arg(root.path())
        .args(["--query", &serde_json::to_string(&q).unwrap()])
        .args(["--shard-ids", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cached = versions(root.path(), 0);
    assert_eq!(cached.len(), 1);
    let manifests: Vec<PathBuf> = files_under(&cached[0])
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "manifest"))
        .collect();
    assert!(!manifests.is_empty(), "no Lance manifest in {cached:?}");
    let good: Vec<Vec<u8>> = manifests
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    for (p, bytes) in manifests.iter().zip(&good) {
        std::fs::write(p, vec![0x5Au8; bytes.len()]).unwrap();
    }

    let r = ShardedVectorReader::open(case.dir.to_str().unwrap(), root.path(), {
        ReaderOptions::new()
    })
    .unwrap();
    let got = r.search(&q, 10, &only(&[0])).unwrap().results;
    assert!(!got.is_empty());
    assert!(got.iter().all(|h| h.shard_id == Some(ShardId(0))));
    // The copy in place is whole again.
    let now = versions(root.path(), 0);
    assert_eq!(now.len(), 1);
    for (p, bytes) in manifests.iter().zip(&good) {
        assert_eq!(&std::fs::read(p).unwrap(), bytes, "{}", p.display());
    }
    // And answers as a pristine copy does.
    let fresh = tempfile::tempdir().unwrap();
    let pristine = ShardedVectorReader::open(
        case.dir.to_str().unwrap(),
        fresh.path(),
        ReaderOptions::new(),
    )
    .unwrap()
    .search(&q, 10, &only(&[0]))
    .unwrap()
    .results;
    assert_same_results("re-downloaded", &got, &pristine);
}

/// Item 5: cache versions no process uses are pruned, never those a live
/// handle reads — here one held by a `shardvec serve` process sharing the
/// local root. Three publishes; without pruning the root held one version
/// per publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_cache_versions_are_pruned_and_used_ones_kept_across_processes() {
    let (a, b, c) = (
        "sqlitevec_cluster_cosine",
        "sqlitevec_explicit_cosine",
        "sqlitevec_lsh_l2",
    );
    let (_tmp, prefix, urls) = two_publishes(a, b);
    copy_dir(&fixtures_dir().join(c), &prefix);
    write_current(&prefix, &urls[0]); // the copy brought C's
    let root = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let body = json!({"query": query(a), "top_k": 10, "shard_ids": [0]});

    // A `serve` process on publish A holds shard 0's version of A.
    let serve = ServeProcess::start(prefix.to_str().unwrap(), root.path(), &[]);
    let search_url = format!("http://{}/v1/search", serve.addr);
    let (status, answer_a) = post(&client, &search_url, &body).await;
    assert_eq!(status, 200, "{answer_a}");
    let version_a = versions(root.path(), 0);
    assert_eq!(version_a.len(), 1);

    // This process moves to B: B's version is downloaded, A's is in use
    // by the other process and stays.
    write_current(&prefix, &urls[1]);
    let reader =
        AsyncShardedVectorReader::open(prefix.to_str().unwrap(), root.path(), ReaderOptions::new())
            .await
            .unwrap();
    reader
        .search(&query(b), 10, &only(&[0]))
        .await
        .expect("B's shard 0");
    let both = versions(root.path(), 0);
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&version_a[0]));
    let (status, again) = post(&client, &search_url, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["results"], answer_a["results"], "A's copy changed");

    // The process holding A stops; publish C arrives. Its download prunes
    // A (no user left) and B (this reader's old state is retired).
    drop(serve);
    write_current(&prefix, &current_manifest_url(c));
    assert!(reader.refresh().await.unwrap());
    reader
        .search(&query(c), 10, &only(&[0]))
        .await
        .expect("C's shard 0");
    let left = versions(root.path(), 0);
    let ids: Vec<String> = left
        .iter()
        .map(|v| std::fs::read_to_string(v.join("identity.json")).unwrap())
        .collect();
    assert_eq!(left.len(), 1, "{left:?} {ids:?} A: {version_a:?}");
    assert!(!both.contains(&left[0]), "{left:?} is not C's version");
    let aside = std::fs::read_dir(root.path().join("shard_00000"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_str().unwrap();
            name.starts_with(".old-") || name.starts_with(".tmp-")
        })
        .count();
    assert_eq!(aside, 0, "pruned versions left on disk");
}

/// Counts shard opens.
#[derive(Debug, Default)]
struct Opens(AtomicUsize);

impl Metrics for Opens {
    fn shard_opened(&self, _: ShardId, _: BackendKind, _: Duration) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Item 5: a refresh to a publish that leaves shards unchanged (here the
/// same manifest published again under a later name) carries their open
/// handles over: nothing is reopened. Shards the publish changed are
/// opened anew.
#[test]
fn a_refresh_carries_the_handles_of_unchanged_shards() {
    const CASE: &str = "sqlitevec_cluster_cosine";
    let (_tmp, prefix, urls) = two_publishes(CASE, "sqlitevec_explicit_cosine");
    let opens = Arc::new(Opens::default());
    let root = tempfile::tempdir().unwrap();
    let reader = ShardedVectorReader::open(
        prefix.to_str().unwrap(),
        root.path(),
        ReaderOptions::new().metrics(opens.clone()),
    )
    .unwrap();
    let q = query(CASE);
    let before = reader.search(&q, 10, &only(&[0, 1])).unwrap().results;
    assert_eq!(opens.0.load(Ordering::Relaxed), 2);

    // The same manifest, republished under a later timestamp.
    let dir = urls[0]
        .rsplit('/')
        .nth(1)
        .expect("manifest folder")
        .to_string();
    let (_, run) = dir.split_once("_run_id=").unwrap();
    let later = format!("2099-01-01T00:00:00.000000Z_run_id={run}");
    let from = prefix.join("manifests").join(&dir).join("manifest");
    let to = prefix.join("manifests").join(&later);
    std::fs::create_dir_all(&to).unwrap();
    std::fs::copy(&from, to.join("manifest")).unwrap();
    write_current(&prefix, &urls[0].replace(&dir, &later));
    assert!(reader.refresh().unwrap());
    assert_eq!(
        reader.snapshot_info().unwrap().manifest_ref,
        urls[0].replace(&dir, &later)
    );
    let after = reader.search(&q, 10, &only(&[0, 1])).unwrap().results;
    assert_same_results("carried", &after, &before);
    assert_eq!(opens.0.load(Ordering::Relaxed), 2, "shards were reopened");

    // A publish that changes the shards opens them.
    write_current(&prefix, &urls[1]);
    assert!(reader.refresh().unwrap());
    reader
        .search(&query("sqlitevec_explicit_cosine"), 10, &only(&[0]))
        .unwrap();
    assert_eq!(opens.0.load(Ordering::Relaxed), 3);
}

/// Item 5: with `prefetch_on_refresh`, a refresh to a publish whose shards
/// cannot be opened (here shard 0's object is gone) fails and the current
/// snapshot stays in service; without it, the refresh swaps and then the
/// searches fail.
#[test]
fn prefetching_refuses_a_refresh_whose_shards_do_not_open() {
    let (a, b) = ("sqlitevec_cluster_cosine", "sqlitevec_explicit_cosine");
    for prefetch in [true, false] {
        let (_tmp, prefix, urls) = two_publishes(a, b);
        let root = tempfile::tempdir().unwrap();
        let reader = ShardedVectorReader::open(
            prefix.to_str().unwrap(),
            root.path(),
            ReaderOptions::new().prefetch_on_refresh(prefetch),
        )
        .unwrap();
        let want = reader.search(&query(a), 10, &only(&[0])).unwrap().results;
        // B's shard 0 is lost from the store.
        let b_shard0 = files_under(&prefix.join("shards"))
            .into_iter()
            .find(|p| {
                let s = p.to_str().unwrap();
                s.contains("db=00000")
                    && fixtures_dir()
                        .join(b)
                        .join(p.strip_prefix(&prefix).unwrap())
                        .exists()
            })
            .expect("B's shard 0");
        std::fs::remove_file(&b_shard0).unwrap();
        write_current(&prefix, &urls[1]);
        let refreshed = reader.refresh();
        if prefetch {
            assert!(refreshed.is_err(), "{refreshed:?}");
            assert_eq!(reader.snapshot_info().unwrap().manifest_ref, urls[0]);
            let got = reader.search(&query(a), 10, &only(&[0])).unwrap().results;
            assert_same_results("still A", &got, &want);
        } else {
            assert!(refreshed.unwrap());
            assert!(reader.search(&query(b), 10, &only(&[0])).is_err());
        }
    }
}
