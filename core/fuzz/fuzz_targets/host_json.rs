//! The host server's JSON request bodies (`/v1/search`,
//! `/v1/shards/search`), parsed by the core parser the host uses, with the
//! payload filter in them. Asserted: a parsed request serialises and parses
//! back to itself; a parsed filter's canonical JSON parses to the same
//! filter and is a fixed point; filter evaluation never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use shardvec_core::api::{SearchRequest, ShardsSearchRequest};
use shardvec_core::{Filter, VectorId};

fn check_filter(f: &Filter) {
    let canon = f.to_json();
    let again = Filter::parse(&canon).expect("canonical JSON parses");
    assert_eq!(&again, f, "canonical round trip");
    assert_eq!(again.to_json(), canon, "canonical JSON is a fixed point");
    // Evaluation on a payload made of the filter itself: any shape.
    let _ = f.matches(&VectorId::Int(1), Some(&canon));
    let _ = f.matches(&VectorId::Str("x".into()), None);
}

/// Equal JSON, numbers that are not integers compared to a few ulps.
fn same_json(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_value(a, b),
        _ => false,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            _ if x == y => true,
            (Some(p), Some(q)) if x.is_f64() || y.is_f64() => {
                (p - q).abs() <= 4.0 * f64::EPSILON * p.abs().max(q.abs())
            }
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// A parsed request serialises and parses back to itself.
fn round_trip(r: &SearchRequest) {
    let text = serde_json::to_vec(r).expect("serialises");
    let back = SearchRequest::parse(&text).expect("parses back");
    // Typed fields exactly; the JSON values (routing context, filter)
    // up to the last bits of long decimals, which serde_json's parser
    // (without its `float_roundtrip` feature) may round differently
    // from how it printed them (found by this target).
    assert_eq!(
        (&back.query, back.top_k, back.num_probes, &back.shard_ids),
        (&r.query, r.top_k, r.num_probes, &r.shard_ids)
    );
    assert_eq!(
        (back.min_results, back.max_probes),
        (r.min_results, r.max_probes)
    );
    assert!(same_json(
        back.routing_context.as_ref(),
        r.routing_context.as_ref()
    ));
    assert!(same_json(back.filter.as_ref(), r.filter.as_ref()));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SearchRequest::parse(data) {
        let _ = r.context();
        let _ = r.shards();
        // A query number past f32's range parses to an infinity (which the
        // reader refuses) and prints as `null`: the round trip holds for
        // finite queries only (found by this target).
        if r.query.iter().all(|v| v.is_finite()) {
            round_trip(&r);
        }
        if let Ok(Some(f)) = r.filter() {
            check_filter(&f);
        }
    }
    if let Ok(r) = ShardsSearchRequest::parse(data) {
        assert_eq!(r.shards().len(), r.shard_ids.len());
        if let Ok(Some(f)) = r.filter() {
            check_filter(&f);
        }
    }
    // Filters alone, from the same bytes.
    if let Ok(f) = std::str::from_utf8(data)
        .map_err(|_| ())
        .and_then(|t| Filter::parse_str(t).map_err(|_| ()))
    {
        check_filter(&f);
    }
});
