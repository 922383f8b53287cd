//! The golden files shared by the native and the wasm tests
//! (`tests/golden/routes.json`, `tests/golden/merge.json`), whose expected
//! answers `tests/golden/make_routes.py` computed independently of shardvec
//! (Python's sqlite3, numpy and docs/format.md's rules): every golden query routes
//! to the expected shards with `shardvec_core::Router` (CLUSTER exact ties,
//! LSH multi-probe, CEL hash and categorical contexts, explicit shard ids),
//! `explain` agrees, and `shardvec_core::merge` gives the expected top-k.
//! `tests/wasm/golden.test.mjs` checks the wasm package against the same
//! files.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use shardvec_core::{RouteOptions, Router, RoutingContext, SearchResult, ShardId};
use shardvec_e2e::Case;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

#[derive(Deserialize)]
struct Routes {
    cases: std::collections::BTreeMap<String, Vec<GoldenQuery>>,
}

#[derive(Deserialize)]
struct GoldenQuery {
    name: String,
    query: Vec<f32>,
    expect: Vec<Expect>,
}

#[derive(Deserialize)]
struct Expect {
    args: Args,
    route: Vec<ShardId>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    num_probes: Option<u32>,
    shard_ids: Option<Vec<ShardId>>,
    routing_context: Option<serde_json::Value>,
}

/// The router of a fixture case, read with the core alone.
fn router(case: &Case) -> Router {
    case.core_routing().2
}

#[test]
fn golden_routes_are_reproduced() {
    let routes: Routes = read_json(&golden("routes.json"));
    let names = shardvec_e2e::case_names();
    assert_eq!(
        routes.cases.keys().collect::<Vec<_>>(),
        {
            let mut n: Vec<&String> = names.iter().collect();
            n.sort();
            n
        },
        "the golden file covers every fixture case"
    );
    let mut checked = 0;
    for (name, queries) in &routes.cases {
        let case = Case::load(name);
        let r = router(&case);
        for q in queries {
            for e in &q.expect {
                let ctx = e
                    .args
                    .routing_context
                    .as_ref()
                    .map(|c| RoutingContext::from_json(c).expect("golden context"));
                let opts = RouteOptions {
                    num_probes: e.args.num_probes,
                    shard_ids: e.args.shard_ids.as_deref(),
                    routing_context: ctx.as_ref(),
                };
                let what = format!("{name}: {} with {:?}", q.name, e.args);
                let got = r
                    .route(&q.query, &opts)
                    .unwrap_or_else(|err| panic!("{what}: {err}"));
                assert_eq!(got, e.route, "{what}");
                let explained = r
                    .explain(&q.query, &opts)
                    .unwrap_or_else(|err| panic!("{what}: explain: {err}"));
                assert_eq!(explained.shards(), got.as_slice(), "{what}: explain");
                checked += 1;
            }
        }
    }
    // Ties, multi-probe and CEL contexts are all there.
    assert!(checked >= 500, "only {checked} golden routes");
    let all: Vec<&String> = routes.cases.values().flatten().map(|q| &q.name).collect();
    for needle in [
        "exact tie",
        "on hyperplane",
        "CEL routing contexts",
        "explicit",
    ] {
        assert!(
            all.iter().any(|n| n.contains(needle)),
            "no `{needle}` query"
        );
    }
}

#[derive(Deserialize)]
struct MergeFile {
    cases: Vec<MergeCase>,
}

#[derive(Deserialize)]
struct MergeCase {
    top_k: usize,
    per_shard: Vec<Vec<SearchResult>>,
    expected: Vec<SearchResult>,
}

#[test]
fn golden_merges_are_reproduced() {
    let file: MergeFile = read_json(&golden("merge.json"));
    assert!(file.cases.len() >= 20);
    for (i, c) in file.cases.into_iter().enumerate() {
        let got = shardvec_core::merge(c.per_shard, c.top_k);
        assert_eq!(got.len(), c.expected.len(), "merge case {i}: length");
        for (j, (g, w)) in got.iter().zip(&c.expected).enumerate() {
            assert_eq!(g.id, w.id, "merge case {i}: result {j}");
            // -0.0 and 0.0 tie; compare as numbers.
            assert!(g.score == w.score, "merge case {i}: result {j} score");
            assert_eq!(g.payload, w.payload, "merge case {i}: result {j} payload");
        }
    }
}
