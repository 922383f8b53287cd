//! Every peer fixture, read with `shardvec-core` alone: `_CURRENT`, the
//! manifest, the `.npy` artefacts, snapshot info, shard details, and the
//! route of every recorded query — all equal to what the reference reader
//! recorded.

use shardvec_core::{Manifest, RouteOptions, Router, RoutingContext, ShardId};
use shardvec_e2e::Case;

struct Loaded {
    case: Case,
    manifest: Manifest,
    manifest_url: String,
    router: Router,
}

fn load(case: Case) -> Loaded {
    let (current, manifest, router) = case.core_routing();
    let mref = current.manifest_ref();
    assert_eq!(mref.url, current.manifest_ref);
    assert_eq!(
        mref.run_id, case.recorded.snapshot_info.run_id,
        "{}",
        case.name
    );
    Loaded {
        case,
        manifest,
        manifest_url: mref.url,
        router,
    }
}

fn all() -> Vec<Loaded> {
    let cases = Case::all();
    assert_eq!(cases.len(), 9, "nine peer fixtures");
    cases.into_iter().map(load).collect()
}

#[test]
fn snapshot_info_and_shard_details_match_the_reference() {
    for l in all() {
        let info = l.manifest.snapshot_info(&l.manifest_url);
        assert_eq!(info, l.case.recorded.snapshot_info, "{}", l.case.name);
        assert_eq!(
            l.manifest.shard_details(),
            l.case.recorded.shards,
            "{}",
            l.case.name
        );
        assert_eq!(l.manifest.build.s3_prefix, l.case.recorded.prefix);
        // Every recorded shard URL names a folder of the fixture.
        for s in &l.manifest.shards {
            let url = s.db_url.as_deref().expect("non-empty shards have URLs");
            assert!(l.case.local_path(url).is_dir(), "{url}");
        }
    }
}

fn options<'a>(
    args: &'a shardvec_e2e::RecordedArgs,
    ctx: &'a Option<RoutingContext>,
) -> RouteOptions<'a> {
    RouteOptions {
        num_probes: args.num_probes,
        shard_ids: args.shard_ids.as_deref(),
        routing_context: ctx.as_ref(),
    }
}

#[test]
fn every_recorded_route_is_reproduced() {
    let mut routed = 0;
    for l in all() {
        for (i, q) in l.case.recorded.queries.iter().enumerate() {
            let ctx = q
                .args
                .routing_context
                .as_ref()
                .map(|c| RoutingContext::from_json(c).expect("context"));
            let opts = options(&q.args, &ctx);
            let route = l.router.route(&q.query, &opts).expect("routes");
            let explained = l.router.explain(&q.query, &opts).expect("explains");
            assert_eq!(
                explained.shards(),
                route.as_slice(),
                "{} query {i}",
                l.case.name
            );
            match &q.route {
                Some(expected) => {
                    // `route` was recorded without shard_ids: compare without.
                    assert_eq!(
                        &route, expected,
                        "{} query {i} args {:?}",
                        l.case.name, q.args
                    );
                    routed += 1;
                }
                None => {
                    let ids = q
                        .args
                        .shard_ids
                        .as_ref()
                        .expect("unrouted queries name shards");
                    assert_eq!(&route, ids, "{} query {i}", l.case.name);
                }
            }
            // Shards absent from the manifest are skipped at search time.
            let present = route
                .iter()
                .filter(|s| l.manifest.shard(**s).is_some())
                .count();
            assert_eq!(present, q.num_shards_queried, "{} query {i}", l.case.name);
        }
    }
    assert!(routed >= 200, "only {routed} routed queries compared");
}

#[test]
fn routing_errors_are_typed() {
    use shardvec_core::Error;
    for l in all() {
        let q = &l.case.recorded.queries[0].query;
        let r = &l.router;
        assert!(matches!(
            r.route(&q[1..], &RouteOptions::new()),
            Err(Error::DimensionMismatch {
                expected: 32,
                got: 31
            })
        ));
        let mut nan = q.clone();
        nan[3] = f32::NAN;
        assert!(matches!(
            r.route(&nan, &RouteOptions::new()),
            Err(Error::NonFiniteQuery { index: 3, .. })
        ));
        let out_of_range = [ShardId(r.num_dbs())];
        assert!(matches!(
            r.route(q, &RouteOptions::new().shard_ids(&out_of_range)),
            Err(Error::ShardOutOfRange { .. })
        ));
        match l.manifest.vector.strategy {
            shardvec_core::Strategy::Cluster | shardvec_core::Strategy::Lsh => {
                assert_eq!(
                    r.route(q, &RouteOptions::new().num_probes(0)),
                    Err(Error::ZeroProbes)
                );
            }
            shardvec_core::Strategy::Explicit => {
                assert!(matches!(
                    r.route(q, &RouteOptions::new()),
                    Err(Error::MissingRoutingInput { .. })
                ));
            }
            shardvec_core::Strategy::Cel => {
                assert!(matches!(
                    r.route(q, &RouteOptions::new()),
                    Err(Error::MissingRoutingInput { .. })
                ));
                let empty = RoutingContext::new();
                assert!(matches!(
                    r.route(q, &RouteOptions::new().routing_context(&empty)),
                    Err(Error::CelVariableMissing(_))
                ));
                let wrong =
                    RoutingContext::from_json(&serde_json::json!({"tenant": 7, "region": 7}))
                        .unwrap();
                assert!(matches!(
                    r.route(q, &RouteOptions::new().routing_context(&wrong)),
                    Err(Error::CelVariableType { .. })
                ));
            }
        }
    }
}
