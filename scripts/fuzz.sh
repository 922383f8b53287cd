#!/usr/bin/env bash
# Fuzzes the core's parsers with cargo fuzz (libFuzzer, nightly).
#
#   scripts/fuzz.sh            smoke run: every target for $FUZZ_SECONDS (default 15 s)
#   scripts/fuzz.sh TARGET S   one target for S seconds
#
# Corpora live outside the clone ($HOME/.cache/shardvec-fuzz/corpus/TARGET),
# seeded from the peer fixtures. A crash fails the run; libFuzzer writes the
# input to core/fuzz/artifacts/TARGET/, and it belongs in
# core/fuzz/regressions/TARGET/ once fixed (the test suite replays those).
set -euo pipefail
cd "$(dirname "$0")/.."
# Nightly builds these; test.sh's stable clippy-driver wrapper must not.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
FIXTURES="${SHARDVEC_FIXTURES:-$PWD/tests/fixtures/peer}"
CACHE="${SHARDVEC_FUZZ_CACHE:-$HOME/.cache/shardvec-fuzz}"
TARGETS=(manifest sqlite npy current cel host_json)

# Copies files into a corpus folder under content-hash names.
add() {
  local dir=$1; shift
  for f in "$@"; do
    [ -f "$f" ] || continue
    cp -f "$f" "$dir/$(sha1sum "$f" | cut -c1-16)"
  done
}

seed() {
  local target=$1 dir=$CACHE/corpus/$1
  mkdir -p "$dir"
  case $target in
    manifest|sqlite) add "$dir" "$FIXTURES"/*/manifests/*/manifest ;;
    npy) add "$dir" "$FIXTURES"/*/vector_meta/*/*.npy ;;
    current) add "$dir" "$FIXTURES"/*/_CURRENT ;;
    cel)
      printf 'shard_hash(tenant) %% 8u\0{"tenant": "acme"}' >"$dir/seed-hash"
      printf 'region == "eu" ? 1 : (size(name) > 3 ? 2u : 3)\0{"region": "us", "name": "abcd"}' >"$dir/seed-ternary"
      printf 'int(x) * 2 + shard_hash(b"\\x01")\0{"x": 3.5}' >"$dir/seed-bytes"
      ;;
    host_json)
      printf '{"query": [0.5, -1, 2e3], "top_k": 5, "num_probes": 2}' >"$dir/seed-search"
      printf '{"query": [1], "routing_context": {"tenant": "acme", "n": 7}}' >"$dir/seed-context"
      printf '{"query": [1, 2], "top_k": 3, "shard_ids": [0, 4], "manifest_ref": "s3://b/p/manifests/x/manifest"}' >"$dir/seed-shards"
      printf '{"query": [1], "filter": {"$or": [{"tenant": "acme"}, {"i": {"$gte": 10, "$lt": 2e1}}], "meta.lang": {"$nin": ["en", null]}}, "min_results": 5}' >"$dir/seed-filter"
      printf '{"query": [1], "top_k": 2, "shard_ids": [1], "filter": {"$not": {"$id": {"$in": [3, "doc-7"]}}, "x": {"$exists": false}}}' >"$dir/seed-shards-filter"
      ;;
  esac
  add "$dir" core/fuzz/regressions/"$target"/*
  echo "$dir"
}

run() {
  local target=$1 secs=$2 corpus log
  corpus=$(seed "$target")
  log=$(mktemp)
  echo "fuzz $target for ${secs}s (corpus $corpus)"
  if ! (cd core && cargo +nightly fuzz run --target-dir "$CACHE/target" "$target" "$corpus" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1) >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz target $target FAILED (crash input under core/fuzz/artifacts/$target/)"
    return 1
  fi
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)' "$log" || tail -5 "$log"
  rm -f "$log"
}

if [ $# -ge 1 ]; then
  run "$1" "${2:-60}"
else
  for t in "${TARGETS[@]}"; do run "$t" "${FUZZ_SECONDS:-15}"; done
fi
