//! The peer fixtures (`tests/fixtures/peer`, written by the Python
//! reference): locating and loading them and their recorded answers, and
//! comparing answers with them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use shardvec_core::npy::Matrix;
use shardvec_core::{
    CurrentPointer, Manifest, Router, RoutingArtefacts, SearchResult, ShardDetail, ShardId,
    SnapshotInfo,
};

/// The folder of the peer fixtures, `tests/fixtures/peer` in the
/// repository (override with `SHARDVEC_FIXTURES`).
pub fn fixtures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SHARDVEC_FIXTURES") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/peer")
}

/// The names of every fixture case, from `index.json`.
pub fn case_names() -> Vec<String> {
    let index: serde_json::Value = read_json(&fixtures_dir().join("index.json"));
    index["cases"]
        .as_array()
        .expect("index.json has cases")
        .iter()
        .map(|c| c["case"].as_str().expect("case name").to_string())
        .collect()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// What the reference reader answered for one case.
#[derive(Debug, Deserialize)]
pub struct Recorded {
    /// Case name.
    pub case: String,
    /// `s3://fixtures/<case>`.
    pub prefix: String,
    /// `snapshot_info()`.
    pub snapshot_info: SnapshotInfo,
    /// `shard_details()`.
    pub shards: Vec<ShardDetail>,
    /// Recorded searches.
    pub queries: Vec<RecordedQuery>,
    /// Every object key of the snapshot.
    pub objects: Vec<String>,
}

/// One recorded search.
#[derive(Debug, Deserialize)]
pub struct RecordedQuery {
    /// The query vector.
    pub query: Vec<f32>,
    /// `top_k`.
    pub top_k: usize,
    /// `num_probes`, `shard_ids` or `routing_context`.
    pub args: RecordedArgs,
    /// Results in order.
    pub results: Vec<SearchResult>,
    /// Shards searched.
    pub num_shards_queried: usize,
    /// `route_vector()` for the same arguments, where routing ran.
    pub route: Option<Vec<ShardId>>,
}

impl RecordedQuery {
    /// The reader's search options for this query's arguments.
    pub fn search_options(&self) -> shardvec::SearchOptions {
        shardvec::SearchOptions {
            shard_ids: self.args.shard_ids.clone(),
            num_probes: self.args.num_probes,
            routing_context: self
                .args
                .routing_context
                .as_ref()
                .map(|c| shardvec_core::RoutingContext::from_json(c).expect("recorded context")),
            ..Default::default()
        }
    }

    /// Asserts that a reader's response is the recorded answer of case
    /// `case` (results, then the number of shards searched).
    pub fn check(&self, what: &str, case: &str, resp: &shardvec::SearchResponse) {
        assert_results(
            what,
            &resp.results,
            &self.results,
            halved_scores_allowed(case),
        );
        assert_eq!(resp.num_shards_queried, self.num_shards_queried, "{what}");
    }
}

/// Keyword arguments of a recorded search.
#[derive(Debug, Default, Deserialize)]
pub struct RecordedArgs {
    /// `num_probes`.
    pub num_probes: Option<u32>,
    /// `shard_ids`.
    pub shard_ids: Option<Vec<ShardId>>,
    /// `routing_context`.
    pub routing_context: Option<serde_json::Value>,
}

/// A fixture case on disk with its recorded answers.
pub struct Case {
    /// Case name.
    pub name: String,
    /// Folder holding the snapshot's objects.
    pub dir: PathBuf,
    /// The recorded answers.
    pub recorded: Recorded,
}

impl Case {
    /// Loads case `name`.
    pub fn load(name: &str) -> Case {
        let dir = fixtures_dir().join(name);
        let recorded = read_json(&fixtures_dir().join(format!("{name}.json")));
        Case {
            name: name.to_string(),
            dir,
            recorded,
        }
    }

    /// Every case.
    pub fn all() -> Vec<Case> {
        case_names().iter().map(|n| Case::load(n)).collect()
    }

    /// Maps a URL recorded in the snapshot (`s3://fixtures/<case>/...`) to
    /// the file in the fixture folder.
    pub fn local_path(&self, url: &str) -> PathBuf {
        let rel = url
            .strip_prefix(&self.recorded.prefix)
            .unwrap_or_else(|| panic!("{url} is not under {}", self.recorded.prefix));
        self.dir.join(rel.trim_start_matches('/'))
    }

    /// Reads an object of the snapshot by key (relative to the prefix).
    pub fn read(&self, key: &str) -> Vec<u8> {
        let path = self.dir.join(key);
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// `_CURRENT`, the manifest it names and its router, read from the
    /// fixture folder with `shardvec-core` alone.
    pub fn core_routing(&self) -> (CurrentPointer, Manifest, Router) {
        let current = CurrentPointer::parse(&self.read("_CURRENT")).expect("_CURRENT parses");
        let bytes =
            std::fs::read(self.local_path(&current.manifest_ref)).expect("manifest on disk");
        let manifest = Manifest::parse(&bytes).expect("manifest parses");
        let npy = |url: &Option<String>, name: &str| {
            url.as_ref().map(|u| {
                let bytes = std::fs::read(self.local_path(u)).expect("artefact on disk");
                Matrix::from_npy(&bytes, name).expect("artefact parses")
            })
        };
        let artefacts = RoutingArtefacts {
            centroids: npy(&manifest.vector.centroids_ref, "centroids.npy"),
            hyperplanes: npy(&manifest.vector.hyperplanes_ref, "hyperplanes.npy"),
        };
        let router = Router::new(&manifest, artefacts).expect("router builds");
        (current, manifest, router)
    }
}

impl RecordedArgs {
    /// The CLI arguments that express these search arguments.
    pub fn cli_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(n) = self.num_probes {
            out.push(format!("--num-probes={n}"));
        }
        if let Some(ids) = &self.shard_ids {
            let ids: Vec<String> = ids.iter().map(|s| s.0.to_string()).collect();
            out.push(format!("--shard-ids={}", ids.join(",")));
        }
        if let Some(ctx) = &self.routing_context {
            out.push(format!("--routing-context={ctx}"));
        }
        out
    }
}

/// Whether a case's shards are sqlite-vec files.
pub fn is_sqlite_case(name: &str) -> bool {
    name.starts_with("sqlitevec_")
}

/// How recorded scores relate to ours for a case. For cosine LanceDB
/// shards with a vector index the reference (lancedb 0.40) reported
/// `2·(1 − cos)` where the `lancedb` crate reports `1 − cos` (the fixtures'
/// README): there a score equal to half the recorded one is right too.
pub fn halved_scores_allowed(name: &str) -> bool {
    name.starts_with("lancedb_") && name.contains("cosine")
}

/// Asserts that `got` is the recorded answer `want`: the same ids in the
/// same order (ids whose scores tie may swap), scores equal within 1e-4
/// relative, the same payloads.
pub fn assert_same_results(what: &str, got: &[SearchResult], want: &[SearchResult]) {
    assert_results(what, got, want, false)
}

/// [`assert_same_results`], also accepting half the recorded score when
/// `halved` (see [`halved_scores_allowed`]).
pub fn assert_results(what: &str, got: &[SearchResult], want: &[SearchResult], halved: bool) {
    assert_eq!(got.len(), want.len(), "{what}: result count");
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1e-6);
    let matches = |g: f32, w: f32| close(g, w) || (halved && close(g, w / 2.0));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            matches(g.score, w.score),
            "{what}: score {i}: {} vs recorded {}",
            g.score,
            w.score
        );
        if g.id != w.id {
            // Allowed only inside a group of tied scores.
            let tied: Vec<&SearchResult> =
                want.iter().filter(|r| close(r.score, w.score)).collect();
            assert!(
                tied.len() > 1 && tied.iter().any(|r| r.id == g.id),
                "{what}: result {i} is {} (score {}), recorded {} (score {})",
                g.id,
                g.score,
                w.id,
                w.score
            );
            let same = want.iter().find(|r| r.id == g.id).map(|r| &r.payload);
            assert_eq!(Some(&g.payload), same, "{what}: payload of {}", g.id);
        } else {
            assert_eq!(g.payload, w.payload, "{what}: payload of {}", g.id);
        }
    }
}

/// Copies a folder tree (fixtures are read-only; tests modify copies).
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
    for entry in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let entry = entry.expect("dir entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to)
                .unwrap_or_else(|e| panic!("copy to {}: {e}", to.display()));
            // Copies of read-only fixtures must be writable.
            let mut perms = std::fs::metadata(&to).expect("metadata").permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&to, perms).expect("chmod");
        }
    }
}

/// The manifest URL of case `name` (from its `_CURRENT`).
pub fn current_manifest_url(name: &str) -> String {
    let c =
        shardvec_core::CurrentPointer::parse(&Case::load(name).read("_CURRENT")).expect("_CURRENT");
    c.manifest_ref
}

/// Writes a `_CURRENT` in `dir` naming `manifest_url`, atomically (a
/// temporary file renamed into place), as an object store PUT replaces an
/// object: concurrent readers see the old pointer or the new one.
pub fn write_current(dir: &Path, manifest_url: &str) {
    let r = shardvec_core::ManifestRef::from_url(manifest_url).expect("manifest URL");
    let tmp = dir.join("_CURRENT.tmp");
    std::fs::write(&tmp, r.to_current().to_json()).expect("write _CURRENT");
    std::fs::rename(&tmp, dir.join("_CURRENT")).expect("rename _CURRENT");
}

/// Two peer fixtures published under one prefix (`<tmp>/snap`), with
/// `_CURRENT` naming `first`'s manifest. Returns the folder (kept alive by
/// the `TempDir`) and the two manifest URLs.
pub fn two_publishes(first: &str, second: &str) -> (tempfile::TempDir, PathBuf, [String; 2]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = tmp.path().join("snap");
    copy_dir(&fixtures_dir().join(first), &prefix);
    copy_dir(&fixtures_dir().join(second), &prefix);
    let urls = [current_manifest_url(first), current_manifest_url(second)];
    write_current(&prefix, &urls[0]);
    (tmp, prefix, urls)
}

/// The `shardvec` binary of this build (`cargo test --workspace` builds
/// it next to the test binaries).
pub fn shardvec_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target folder")
        .join("shardvec");
    assert!(
        bin.exists(),
        "{} (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// Every file under `dir` (recursively), sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `n` seeded records of dimension 8 (`sin` of a mix of row, column and
/// `salt`), each with the payload `{"i": i}`: small writer inputs whose
/// `salt` tells two publishes apart.
pub fn records(n: usize, salt: f32) -> Vec<shardvec::writer::Record> {
    (0..n)
        .map(|i| {
            let v: Vec<f32> = (0..8)
                .map(|d| ((i * 7 + d * 13) as f32 * 0.37 + salt).sin())
                .collect();
            shardvec::writer::Record::new(shardvec_core::VectorId::Int(i as i64), v)
                .payload(serde_json::json!({ "i": i }))
        })
        .collect()
}
