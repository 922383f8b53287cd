//! Faults, with real components: an S3 server on loopback (moto) stopped
//! and restarted mid-run, or answering 503 through a fault proxy, shard objects deleted or truncated after publish,
//! a damaged local cache, several processes sharing one `local_root`, and
//! a soak of 16 threads searching while `_CURRENT` flips 200 times.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardvec::{
    AsyncShardedVectorReader, Error, ReaderOptions, SearchOptions, ShardedVectorReader,
    StoreOptions,
};
use shardvec_core::{SearchResult, ShardId};
use shardvec_e2e::fault_proxy::FaultProxy;
use shardvec_e2e::host::{open_fds, rss_kib};
use shardvec_e2e::s3::S3Server;
use shardvec_e2e::{
    assert_same_results, copy_dir, fixtures_dir, shardvec_bin, two_publishes, write_current, Case,
};

const CASE: &str = "sqlitevec_cluster_cosine";

fn query() -> Vec<f32> {
    Case::load(CASE).recorded.queries[0].query.clone()
}

fn only(ids: &[u32]) -> SearchOptions {
    SearchOptions::new().shard_ids(ids.iter().copied().map(ShardId).collect::<Vec<_>>())
}

/// The answers of a fresh reader of the pristine fixture `case` alone.
fn fixture_answers(
    case: &str,
    queries: &[Vec<f32>],
    opts: &SearchOptions,
) -> Vec<Vec<SearchResult>> {
    let root = tempfile::tempdir().unwrap();
    let r = ShardedVectorReader::open(
        fixtures_dir().join(case).to_str().unwrap(),
        root.path(),
        ReaderOptions::new(),
    )
    .unwrap();
    queries
        .iter()
        .map(|q| r.search(q, 10, opts).unwrap().results)
        .collect()
}

/// The answer of the pristine fixture for `shards` (on a thread of its
/// own, so async tests can ask too).
fn pristine(shards: &[u32]) -> Vec<SearchResult> {
    let shards = shards.to_vec();
    std::thread::spawn(move || fixture_answers(CASE, &[query()], &only(&shards)).remove(0))
        .join()
        .unwrap()
}

/// The file of shard `sid` in a copy of the fixture.
fn shard_file(prefix: &Path, sid: u32) -> PathBuf {
    let dir = prefix.join("shards");
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.ends_with("shard.db")
                && p.to_string_lossy().contains(&format!("/db={sid:05}/"))
            {
                return p;
            }
        }
    }
    panic!("no shard.db for shard {sid} under {}", prefix.display())
}

#[test]
fn a_deleted_or_truncated_shard_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("snap");
    copy_dir(&fixtures_dir().join(CASE), &prefix);
    std::fs::remove_file(shard_file(&prefix, 2)).unwrap();
    let f = shard_file(&prefix, 3);
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let root = tempfile::tempdir().unwrap();
    let r = ShardedVectorReader::open(prefix.to_str().unwrap(), root.path(), ReaderOptions::new())
        .unwrap();
    let q = query();
    for sid in [2, 3] {
        let e = r.search(&q, 10, &only(&[sid])).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("db={sid:05}")) || msg.contains(&format!("shard {sid}")),
            "shard {sid}: {msg}"
        );
        assert!(
            matches!(
                e,
                Error::Store { .. } | Error::Backend { .. } | Error::Cache { .. }
            ),
            "{e:?}"
        );
    }
    // The other shards keep answering, exactly.
    let got = r.search(&q, 10, &only(&[0, 1])).unwrap().results;
    assert_same_results("healthy shards", &got, &pristine(&[0, 1]));
}

#[test]
fn a_damaged_local_cache_is_downloaded_again() {
    let prefix = fixtures_dir().join(CASE);
    let root = tempfile::tempdir().unwrap();
    let all = [0, 1, 2, 3, 4, 5, 6, 7];
    let want = pristine(&all);
    {
        let r =
            ShardedVectorReader::open(prefix.to_str().unwrap(), root.path(), ReaderOptions::new())
                .unwrap();
        assert_same_results(
            "first",
            &r.search(&query(), 10, &only(&all)).unwrap().results,
            &want,
        );
    }
    let cached = |sid: u32| -> PathBuf {
        let dir = root.path().join(format!("shard_{sid:05}"));
        let v = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("v-"))
            .unwrap();
        v.join("shard.db")
    };
    // Truncated (size differs from db_bytes).
    let f0 = cached(0);
    let len = std::fs::metadata(&f0).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f0)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    // Same size, damaged pages (fails SQLite's quick_check).
    let f1 = cached(1);
    let mut bytes = std::fs::read(&f1).unwrap();
    for b in &mut bytes[4096..12288] {
        *b = 0xA5;
    }
    std::fs::write(&f1, &bytes).unwrap();
    // No identity.
    std::fs::remove_file(cached(2).with_file_name("identity.json")).unwrap();
    // Garbage in place of the file, same size.
    let f3 = cached(3);
    let len3 = std::fs::metadata(&f3).unwrap().len() as usize;
    std::fs::write(&f3, vec![7u8; len3]).unwrap();

    let r = ShardedVectorReader::open(prefix.to_str().unwrap(), root.path(), ReaderOptions::new())
        .unwrap();
    assert_same_results(
        "after damage",
        &r.search(&query(), 10, &only(&all)).unwrap().results,
        &want,
    );
    for sid in 0..4 {
        let f = cached(sid);
        let original = std::fs::read(shard_file(&prefix, sid)).unwrap();
        assert_eq!(
            std::fs::read(&f).unwrap(),
            original,
            "shard {sid} was downloaded again"
        );
    }
}

/// The `shardvec` binary of this build (next to the test executables).
#[test]
fn processes_sharing_a_local_root_never_read_a_torn_file() {
    let root = tempfile::tempdir().unwrap();
    let prefix = fixtures_dir().join(CASE);
    let q = serde_json::to_string(&query()).unwrap();
    for round in 0..3 {
        let children: Vec<_> = (0..6)
            .map(|_| {
                std::process::Command::new(shardvec_bin())
                    .args([
                        "search",
                        "--prefix",
                        prefix.to_str().unwrap(),
                        "--local-root",
                    ])
                    .arg(root.path())
                    .args(["--query", &q, "--shard-ids", "0,1,2,3,4,5,6,7", "--json"])
                    .output()
                    .unwrap()
            })
            .collect();
        let mut outputs = Vec::new();
        for c in children {
            assert!(
                c.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&c.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
            // Typed: scores compare as the f32s they are, whatever digits
            // print them.
            let results: Vec<SearchResult> = serde_json::from_value(v["results"].clone()).unwrap();
            outputs.push(results);
        }
        let want = pristine(&[0, 1, 2, 3, 4, 5, 6, 7]);
        for o in outputs {
            assert_eq!(o, want, "round {round}");
        }
        // Next round: a cold cache again, so downloads race.
        for e in std::fs::read_dir(root.path()).unwrap() {
            std::fs::remove_dir_all(e.unwrap().path()).unwrap();
        }
    }
}

/// A moto server holding the fixture at `s3://snap/p`.
async fn s3_with_fixture(case: &Case) -> S3Server {
    let server = S3Server::start();
    server.create_bucket("snap");
    server.upload_dir(&case.dir, "snap", "p").await;
    server
}

/// A reader of `s3://snap/p` with an empty cache (kept alive with it).
async fn open_s3(store: StoreOptions) -> (AsyncShardedVectorReader, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let reader = AsyncShardedVectorReader::open(
        "s3://snap/p",
        root.path(),
        ReaderOptions::new().store_options(store),
    )
    .await
    .unwrap();
    (reader, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_fails_fast_and_heals_without_reopening() {
    let case = Case::load(CASE);
    let mut server = s3_with_fixture(&case).await;
    let (reader, _root) = open_s3(server.options().retry(2, Duration::from_secs(3))).await;
    let q = query();
    // Shard 0 is cached; shard 5 is not yet.
    let before = reader.search(&q, 10, &only(&[0])).await.unwrap();
    let manifest = reader.manifest_ref().unwrap();

    server.stop();
    let started = Instant::now();
    let e = reader.search(&q, 10, &only(&[5])).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let msg = e.to_string();
    assert!(msg.contains("db=00005"), "{msg}");
    // Refresh while the store is down: fails, the snapshot stays.
    assert!(reader.refresh().await.is_err());
    assert_eq!(reader.manifest_ref().unwrap(), manifest);
    // Cached shards keep answering.
    let again = reader.search(&q, 10, &only(&[0])).await.unwrap();
    assert_same_results("cached during outage", &again.results, &before.results);

    server.restart();
    server.create_bucket("snap");
    server.upload_dir(&case.dir, "snap", "p").await;
    let healed = reader.search(&q, 10, &only(&[5])).await.unwrap();
    assert_same_results("after restart", &healed.results, &pristine(&[5]));
    assert_eq!(reader.manifest_ref().unwrap(), manifest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_s3_errors_are_retried_with_backoff_within_one_search() {
    let server = s3_with_fixture(&Case::load(CASE)).await;
    let proxy = FaultProxy::start(&server.endpoint);
    let open = |retries: usize| {
        // The later endpoint pair wins: every request goes through the proxy.
        open_s3(
            server
                .options()
                .endpoint(proxy.endpoint.clone())
                .retry(retries, Duration::from_secs(30))
                .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
                // Every request on a new connection, so each injected fault
                // is met by a request (a pooled connection the proxy closed
                // would fail a request without reaching it: a flake seen in
                // CI).
                .option("pool_max_idle_per_host", "0"),
        )
    };
    let q = query();

    // Three 503 SlowDown answers in a row, then the server: one search
    // call downloads the shard and answers as the fixture does.
    let (reader, _root) = open(5).await;
    let forwarded = proxy.forwarded();
    proxy.fail_next(3);
    let healed = reader.search(&q, 10, &only(&[5])).await.unwrap();
    assert_same_results("retried to success", &healed.results, &pristine(&[5]));
    assert_eq!(proxy.failed(), 3, "every injected fault was met");
    assert!(proxy.forwarded() > forwarded, "then the server answered");

    // The same fault with retries off is an error naming the object.
    let (strict, _root2) = open(0).await;
    proxy.fail_next(1);
    let e = strict.search(&q, 10, &only(&[6])).await.unwrap_err();
    assert!(e.to_string().contains("db=00006"), "{e}");
    assert_eq!(proxy.failed(), 4);
    // With fewer retries than faults it gives up too, and the next call
    // (faults spent) succeeds without reopening.
    let (short, _root3) = open(1).await;
    proxy.fail_next(3);
    assert!(short.search(&q, 10, &only(&[7])).await.is_err());
    let later = short.search(&q, 10, &only(&[7])).await.unwrap();
    assert_same_results("after the faults", &later.results, &pristine(&[7]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_to_a_missing_or_corrupt_manifest_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("snap");
    copy_dir(&fixtures_dir().join(CASE), &prefix);
    let root = tempfile::tempdir().unwrap();
    let reader = AsyncShardedVectorReader::open(
        prefix.to_str().unwrap(),
        root.path(),
        ReaderOptions::new().store_options(StoreOptions::new()),
    )
    .await
    .unwrap();
    let served = reader.manifest_ref().unwrap();
    let q = query();
    let want = reader.search(&q, 10, &only(&[0, 4])).await.unwrap().results;
    let good_current = std::fs::read(prefix.join("_CURRENT")).unwrap();
    let missing = served.url.replace("run_id=", "run_id=gone-");
    for (what, current) in [
        (
            "missing manifest",
            shardvec_core::ManifestRef {
                url: missing.clone(),
                ..served.clone()
            }
            .to_current()
            .to_json()
            .into_bytes(),
        ),
        ("corrupt _CURRENT", b"{\"manifest_ref\": 3".to_vec()),
        ("empty _CURRENT", Vec::new()),
    ] {
        std::fs::write(prefix.join("_CURRENT"), &current).unwrap();
        assert!(reader.refresh().await.is_err(), "{what}");
        assert_eq!(reader.manifest_ref().unwrap(), served, "{what}");
        let got = reader.search(&q, 10, &only(&[0, 4])).await.unwrap().results;
        assert_same_results(what, &got, &want);
    }
    // A pointer to a newer manifest whose bytes are corrupt.
    let key = |url: &str| prefix.join(shardvec::ObjectManifestStore::manifest_key(url).unwrap());
    let bytes = std::fs::read(key(&served.url)).unwrap();
    let corrupt = served.url.replace("run_id=", "run_id=corrupt-");
    std::fs::create_dir_all(key(&corrupt).parent().unwrap()).unwrap();
    std::fs::write(key(&corrupt), &bytes[..bytes.len() / 3]).unwrap();
    let pointer = shardvec_core::ManifestRef {
        url: corrupt,
        ..served.clone()
    }
    .to_current();
    std::fs::write(prefix.join("_CURRENT"), pointer.to_json()).unwrap();
    assert!(reader.refresh().await.is_err(), "corrupt manifest");
    assert_eq!(reader.manifest_ref().unwrap(), served);
    let got = reader.search(&q, 10, &only(&[0, 4])).await.unwrap().results;
    assert_same_results("corrupt manifest", &got, &want);
    // Back to the good pointer: nothing to change.
    std::fs::write(prefix.join("_CURRENT"), &good_current).unwrap();
    assert!(!reader.refresh().await.unwrap());
}

#[test]
fn a_shard_outside_the_prefix_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("snap");
    copy_dir(&fixtures_dir().join(CASE), &prefix);
    // Rewrite shard 3's recorded URL, in place and at the same length, to a
    // file:// folder outside the prefix, and move the shard there.
    let current =
        shardvec_core::CurrentPointer::parse(&std::fs::read(prefix.join("_CURRENT")).unwrap())
            .unwrap();
    let manifest_file =
        prefix.join(shardvec::ObjectManifestStore::manifest_key(&current.manifest_ref).unwrap());
    let bytes = std::fs::read(&manifest_file).unwrap();
    let manifest = shardvec_core::Manifest::parse(&bytes).unwrap();
    let url = manifest.shard(ShardId(3)).unwrap().db_url.clone().unwrap();
    let head = format!("file://{}/elsewhere-", tmp.path().display());
    assert!(head.len() < url.len(), "{head} vs {url}");
    let foreign = format!("{head}{}", "x".repeat(url.len() - head.len()));
    let outside = PathBuf::from(foreign.trim_start_matches("file://"));
    std::fs::create_dir_all(&outside).unwrap();
    let original = shard_file(&prefix, 3);
    std::fs::rename(&original, outside.join("shard.db")).unwrap();
    let patched = String::from_utf8_lossy(&bytes)
        .matches(url.as_str())
        .count();
    assert!(patched >= 1);
    let mut out = bytes.clone();
    let mut at = 0;
    while let Some(i) = out[at..]
        .windows(url.len())
        .position(|w| w == url.as_bytes())
    {
        out[at + i..at + i + url.len()].copy_from_slice(foreign.as_bytes());
        at += i + url.len();
    }
    std::fs::write(&manifest_file, &out).unwrap();

    let q = query();
    let open = |allow: bool| {
        let root = tempfile::tempdir().unwrap();
        let r = ShardedVectorReader::open(
            prefix.to_str().unwrap(),
            root.path(),
            ReaderOptions::new().allow_foreign_urls(allow),
        )
        .unwrap();
        (r, root)
    };
    let (refusing, _r1) = open(false);
    let e = refusing.search(&q, 10, &only(&[3])).unwrap_err();
    assert!(matches!(e, Error::ForeignUrl { .. }), "{e:?}");
    assert!(e.to_string().contains(&foreign), "{e}");
    // The other shards are unaffected.
    let got = refusing.search(&q, 10, &only(&[0])).unwrap().results;
    assert_same_results("shard 0", &got, &pristine(&[0]));
    let (allowing, root) = open(true);
    let got = allowing.search(&q, 10, &only(&[3])).unwrap().results;
    assert_same_results("foreign shard 3, allowed", &got, &pristine(&[3]));
    // Cached by shard id, not by URL.
    assert!(root.path().join("shard_00003").is_dir());
}

#[test]
fn soak_sixteen_threads_while_current_flips_200_times() {
    // Two publishes under one prefix; explicit shard ids route the same in
    // both, so every answer can be checked against the manifest it reports.
    let (a, b) = ("sqlitevec_cluster_cosine", "sqlitevec_explicit_cosine");
    let (_tmp, prefix, urls) = two_publishes(a, b);
    let queries: Vec<Vec<f32>> = Case::load(b)
        .recorded
        .queries
        .iter()
        .take(8)
        .map(|q| q.query.clone())
        .collect();
    let opts = only(&[0, 1, 2, 3]);
    // Expected answers per manifest, from a reader of each fixture alone.
    let expected: Vec<Vec<Vec<SearchResult>>> = [a, b]
        .iter()
        .map(|case| fixture_answers(case, &queries, &opts))
        .collect();

    let root = tempfile::tempdir().unwrap();
    let reader = Arc::new(
        ShardedVectorReader::open(prefix.to_str().unwrap(), root.path(), ReaderOptions::new())
            .unwrap(),
    );
    // Warm up both publishes' shards, then take the baseline.
    for url in urls.iter().rev().chain(urls.iter()) {
        write_current(&prefix, url);
        reader.refresh().unwrap();
        for q in &queries {
            reader.search(q, 10, &opts).unwrap();
        }
    }
    let (fds_before, rss_before) = (open_fds(), rss_kib());

    let stop = Arc::new(AtomicBool::new(false));
    let searches = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (reader, stop, searches) = (reader.clone(), stop.clone(), searches.clone());
            let (queries, expected, urls) = (queries.clone(), expected.clone(), urls.clone());
            let opts = opts.clone();
            std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let qi = i % queries.len();
                    let resp = reader
                        .search(&queries[qi], 10, &opts)
                        .expect("search during flips");
                    let which = urls
                        .iter()
                        .position(|u| *u == resp.manifest_ref.url)
                        .expect("known manifest");
                    assert_same_results(
                        &format!("thread {t} query {qi} on {which}"),
                        &resp.results,
                        &expected[which][qi],
                    );
                    searches.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for flip in 0..200 {
        write_current(&prefix, &urls[flip % 2]);
        assert!(
            reader.refresh().unwrap(),
            "flip {flip} swapped the manifest"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("no search failed or mismatched");
    }
    assert!(
        searches.load(Ordering::Relaxed) > 200,
        "searches ran during the flips"
    );
    let (fds_after, rss_after) = (open_fds(), rss_kib());
    assert!(
        fds_after <= fds_before + 16,
        "fds {fds_before} -> {fds_after}"
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS {rss_before} KiB -> {rss_after} KiB"
    );
}

#[test]
fn a_full_disk_during_a_download_leaves_the_old_cache_intact() {
    // Publish A is cached; _CURRENT then moves to publish B, whose shard 0
    // is downloaded by a process that may not write more than 16 KiB to a
    // file (RLIMIT_FSIZE, with SIGXFSZ ignored: writes fail with EFBIG, as
    // on a full disk).
    let (_tmp, prefix, urls) =
        two_publishes("sqlitevec_cluster_cosine", "sqlitevec_explicit_cosine");
    let root = tempfile::tempdir().unwrap();
    let q = query();
    let reader =
        ShardedVectorReader::open(prefix.to_str().unwrap(), root.path(), ReaderOptions::new())
            .unwrap();
    let before = reader.search(&q, 10, &only(&[0])).unwrap().results;
    let shard_dir = root.path().join("shard_00000");
    let versions = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&shard_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("v-"))
            .collect();
        v.sort();
        v
    };
    let cached_a = versions();
    assert_eq!(cached_a.len(), 1);
    let bytes_a = std::fs::read(cached_a[0].join("shard.db")).unwrap();

    write_current(&prefix, &urls[1]);
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 16; exec "$0" "$@""#)
        .arg(shardvec_bin())
        .args([
            "search",
            "--prefix",
            prefix.to_str().unwrap(),
            "--local-root",
        ])
        .arg(root.path())
        .args([
            "--query",
            &serde_json::to_string(&q).unwrap(),
            "--shard-ids",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the download must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shard_00000") || err.contains("too large"),
        "{err}"
    );
    // The old version is untouched and no new version was installed.
    assert_eq!(versions(), cached_a);
    assert_eq!(
        std::fs::read(cached_a[0].join("shard.db")).unwrap(),
        bytes_a
    );
    // The reader still on A keeps answering; with space back, B downloads.
    assert_same_results(
        "still on A",
        &reader.search(&q, 10, &only(&[0])).unwrap().results,
        &before,
    );
    // A, no longer used by anyone once the refresh retired the reader's
    // old state, is pruned when B is installed (issue 15, item 5).
    assert!(reader.refresh().unwrap());
    reader.search(&q, 10, &only(&[0])).unwrap();
    let now = versions();
    assert_eq!(now.len(), 1);
    assert_ne!(now, cached_a);
}
