//! Property tests of filters: random payloads × random filters.
//!
//! 1. Evaluation: `Filter::matches`, the columnar `Filter::select` and the
//!    canonical JSON all equal the independent evaluator
//!    (`shardvec_e2e::filter_oracle`).
//! 2. Search: a snapshot written from random records (sqlite-vec, 4
//!    shards), searched with random filters over every shard, equals a
//!    brute force over the records with the evaluator applied first.

use proptest::prelude::*;
use shardvec::writer::{self, Input, Record, StrategyConfig, WriterOptions};
use shardvec::{AsyncShardedVectorReader, ReaderOptions, SearchOptions};
use shardvec_core::filter::ColumnsBuilder;
use shardvec_core::{Filter, Metric, ShardId, VectorId};
use shardvec_e2e::filter_oracle::{filter, id, id_json, oracle, payload};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn filters_equal_an_independent_evaluator(
        rows in prop::collection::vec((id(), payload()), 0..40),
        filters in prop::collection::vec(filter(), 1..6),
    ) {
        let mut b = ColumnsBuilder::new();
        for (id, p) in &rows {
            b.push(id, p.as_ref());
        }
        let cols = b.finish();
        for fj in &filters {
            let f = Filter::parse(fj).map_err(|e| TestCaseError::fail(format!("{fj}: {e}")))?;
            let canon = Filter::parse(&f.to_json()).unwrap();
            let set = f.select(&cols);
            for (row, (id, p)) in rows.iter().enumerate() {
                let want = oracle(fj, &id_json(id), p.as_ref());
                prop_assert_eq!(f.matches(id, p.as_ref()), want, "matches: {} on {:?} {:?}", fj, id, p);
                prop_assert_eq!(set.contains(row), want, "select: {} on {:?} {:?}", fj, id, p);
                prop_assert_eq!(canon.matches(id, p.as_ref()), want, "canonical {}", f);
            }
            prop_assert_eq!(set.count(), rows.iter().filter(|(id, p)| f.matches(id, p.as_ref())).count());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn filtered_search_equals_a_brute_force_with_the_evaluator(
        rows in prop::collection::vec(
            (prop::collection::vec(-1.0f32..1.0, 8), payload()),
            60..160,
        ),
        filters in prop::collection::vec(filter(), 4..8),
        queries in prop::collection::vec(prop::collection::vec(-1.0f32..1.0, 8), 3),
    ) {
        let records: Vec<Record> = rows
            .iter()
            .enumerate()
            .map(|(i, (v, p))| {
                let id = if i % 3 == 0 { VectorId::Str(format!("d{i}")) } else { VectorId::Int(i as i64) };
                let r = Record::new(id, v.clone());
                match p {
                    Some(p) => r.payload(p.clone()),
                    None => r,
                }
            })
            .collect();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("snap");
        let opts = WriterOptions::new(4, Metric::L2, StrategyConfig::Lsh { num_hash_bits: 3 })
            .num_probes(1)
            .seed(3);
        rt.block_on(writer::build(prefix.to_str().unwrap(), &Input::memory(records.clone()), &opts))
            .unwrap();
        let reader = rt
            .block_on(AsyncShardedVectorReader::open(
                prefix.to_str().unwrap(),
                dir.path().join("cache"),
                ReaderOptions::new(),
            ))
            .unwrap();
        let all: Vec<ShardId> = (0..4).map(ShardId).collect();
        for fj in &filters {
            let f = Filter::parse(fj).unwrap();
            for q in &queries {
                let k = 7;
                let got = rt
                    .block_on(reader.search(q, k, &SearchOptions::new().shard_ids(all.clone()).filter(f.clone())))
                    .unwrap();
                // Brute force: the records the evaluator accepts, by L2.
                let mut truth: Vec<(f64, &Record)> = records
                    .iter()
                    .filter(|r| oracle(fj, &id_json(&r.id), r.payload.as_ref()))
                    .map(|r| {
                        let d: f64 = q.iter().zip(&r.vector)
                            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                            .sum::<f64>()
                            .sqrt();
                        (d, r)
                    })
                    .collect();
                truth.sort_by(|a, b| a.0.total_cmp(&b.0));
                prop_assert_eq!(got.results.len(), truth.len().min(k), "{}", fj);
                for (hit, (d, r)) in got.results.iter().zip(&truth) {
                    prop_assert_eq!(&hit.id, &r.id, "{}", fj);
                    // A record without a payload may be stored as `{}`.
                    let empty = serde_json::json!({});
                    prop_assert_eq!(
                        hit.payload.as_ref().unwrap_or(&empty),
                        r.payload.as_ref().unwrap_or(&empty)
                    );
                    prop_assert!((f64::from(hit.score) - d).abs() <= 1e-4 * d.max(1e-3));
                }
            }
        }
    }
}
