#!/usr/bin/env bash
# The filtered-search rows of BENCHMARKS.md (issue 16), with one command:
#
#   bash scripts/bench_filter.sh
#
# 100 000 x 128 seeded vectors (`shardvec synth`, 256 clusters), each with a
# payload {"sel": i % 100, "tenant": "t<i % 7>"}, so `sel` selects 100 %,
# 10 % and 1 % of the rows independently of the clusters. Snapshots:
# sqlite-vec and LanceDB, CLUSTER, 16 shards, cosine, num_probes 2, and one
# un-sharded LanceDB table of the same records. `shardvec bench` runs the
# same 500 queries unfiltered and with each filter; JSON lines go to
# $SHARDVEC_BENCH_DIR/filter.jsonl and a table to stdout.
# Uses the test build of the binary (scripts/test.sh or bench.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
W=${SHARDVEC_BENCH_DIR:-$HOME/.cache/shardvec-bench}/filter
B="$CARGO_TARGET_DIR/debug/shardvec"
[ -x "$B" ] || { echo "no $B: build first (cargo test --workspace --no-run)" >&2; exit 1; }
mkdir -p "$W"
OUT="$W/../filter.jsonl"
: >"$OUT"
[ -f "$W/data/queries.npy" ] || "$B" synth --n 100000 --dim 128 --clusters 256 --queries 500 --seed 42 --out "$W/data" >&2
[ -f "$W/data/payloads.jsonl" ] ||
  python3 -c 'import json
with open("'"$W"'/data/payloads.jsonl", "w") as f:
    for i in range(100000):
        f.write(json.dumps({"sel": i % 100, "tenant": "t%d" % (i % 7)}) + "\n")'
build() { # backend shards prefix probes
  [ -f "$3/_CURRENT" ] || "$B" build --input "$W/data/vectors.npy" --payloads "$W/data/payloads.jsonl" --prefix "$3" \
    --strategy cluster --num-dbs "$2" --metric cosine --backend "$1" --num-probes "$4" --seed 42 --no-progress --json >/dev/null
}
build sqlite-vec 16 "$W/snap-sqlite-vec" 2
build lancedb 16 "$W/snap-lancedb" 2
build lancedb 1 "$W/one-lancedb" 1
for snap in snap-sqlite-vec snap-lancedb one-lancedb; do
  for sel in none 100 10 1; do
    case $sel in
      none) f=() ;;
      100) f=(--filter '{"sel": {"$gte": 0}}') ;;
      10) f=(--filter '{"sel": {"$lt": 10}}') ;;
      1) f=(--filter '{"sel": 0}') ;;
    esac
    echo "bench $snap selectivity $sel" >&2
    json=$("$B" bench --prefix "$W/$snap" --queries "$W/data/queries.npy" --rounds 3 "${f[@]}" --json)
    python3 -c 'import json,sys; r=json.loads(sys.argv[3]); r.update(snapshot=sys.argv[1], selectivity=sys.argv[2]); print(json.dumps(r))' \
      "$snap" "$sel" "$json" >>"$OUT"
  done
done
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| snapshot | filter selectivity | warm p50 ms | warm p99 ms | queries/s | cold open + first query ms |")
print("|---|---:|---:|---:|---:|---:|")
for r in rows:
    sel = "unfiltered" if r["selectivity"] == "none" else r["selectivity"] + " %"
    print(f'| {r["snapshot"]} | {sel} | {r["warm_p50_ms"]:.3f} | {r["warm_p99_ms"]:.3f} | {r["qps"]:.0f} | {r["cold_open_first_query_ms"]:.0f} |')
PY
