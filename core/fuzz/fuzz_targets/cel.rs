//! CEL routing: an arbitrary expression (as a manifest would carry it) and
//! an arbitrary routing context (JSON), separated by a NUL byte. Compiling
//! applies the cost bound; routing must answer or fail, never panic or hang
//! (run with `-timeout`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardvec_core::RoutingContext;

fuzz_target!(|data: &[u8]| {
    let (expr, ctx) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(expr) = std::str::from_utf8(expr) else {
        return;
    };
    let ctx = serde_json::from_slice::<serde_json::Value>(ctx)
        .ok()
        .and_then(|v| RoutingContext::from_json(&v).ok())
        .unwrap_or_default();
    if let Ok(shard) = shardvec_core::__fuzz::route_expr(expr, &ctx, 8) {
        assert!(shard.0 < 8);
    }
});
