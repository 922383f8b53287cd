mod common;
#[test]
fn dump() {
    let mut r = common::Rng(12345);
    let mut out = String::new();
    for i in 0..600000 {
        let f = match i % 4 { 0 => f64::from_bits(r.next_u64()), 1 => (r.next_u64() % 2_000_000) as f64 / 1000.0 * 10f64.powi((r.next_u64() % 50) as i32 - 25), 2 => f64::from_bits(r.next_u64() >> (r.next_u64() % 20)), _ => (r.next_u64() >> (r.next_u64() % 64)) as f64 / (1u64 << (r.next_u64() % 12)) as f64 };
        if !f.is_finite() { continue; }
        out.push_str(&format!("{}\t{}\n", f.to_bits(), shardvec_core::manifest::py_json(&serde_json::Value::from(f))));
    }
    std::fs::write("/tmp/floats_dump.txt", out).unwrap();
}
