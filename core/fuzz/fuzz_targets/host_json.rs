//! The host server's JSON request bodies (`/v1/search`,
//! `/v1/shards/search`), parsed by the core parser the host uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardvec_core::api::{SearchRequest, ShardsSearchRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SearchRequest::parse(data) {
        let _ = r.context();
        let _ = r.shards();
    }
    if let Ok(r) = ShardsSearchRequest::parse(data) {
        assert_eq!(r.shards().len(), r.shard_ids.len());
    }
});
