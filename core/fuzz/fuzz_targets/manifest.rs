//! Manifest images: parse and validate, then derive the info and shard table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardvec_core::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        let _ = m.snapshot_info("s3://fuzz/manifest");
        // Bounded: num_dbs can be large in a hostile manifest.
        if m.num_dbs() <= 100_000 {
            let _ = m.shard_details();
        }
    }
});
