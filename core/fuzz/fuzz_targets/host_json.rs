//! The host server's JSON request bodies (`/v1/search`,
//! `/v1/shards/search`), parsed by the core parser the host uses, with the
//! payload filter in them. Asserted: a parsed request serialises and parses
//! back to itself; a parsed filter's canonical JSON parses to the same
//! filter and is a fixed point; filter evaluation never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
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

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SearchRequest::parse(data) {
        let _ = r.context();
        let _ = r.shards();
        let text = serde_json::to_vec(&r).expect("serialises");
        assert_eq!(SearchRequest::parse(&text).expect("parses back"), r);
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
    if let Ok(f) = std::str::from_utf8(data).map_err(|_| ()).and_then(|t| Filter::parse_str(t).map_err(|_| ())) {
        check_filter(&f);
    }
});
