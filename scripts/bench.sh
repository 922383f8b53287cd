#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md, with one command:
#
#   bash scripts/bench.sh [--quick]
#
# Builds seeded synthetic datasets (`shardvec synth`), snapshots of them with
# the writer (CLUSTER and LSH, sqlite-vec and LanceDB, cosine and l2), and
# runs `shardvec bench` on each: warm latency and recall per num_probes with
# the in-memory SIMD brute-force floor, throughput at 1/4/16 callers with
# the async and the blocking reader, cold open from file:// and from an S3
# server on loopback (moto), one un-sharded LanceDB table of the same
# vectors, and routing alone natively and in WebAssembly under Node. Every
# result is a JSON line in $SHARDVEC_BENCH_DIR/results.jsonl; the tables of
# BENCHMARKS.md are generated from it (scripts/bench_report.py).
#
# --quick: the 100 000 x 128 dataset only. The binary is the test build
# (see the profile notes in Cargo.toml); run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/env.sh
LOCK=${SHARDVEC_CARGO_LOCK:-/tmp/shardvec-cargo.lock}
W=${SHARDVEC_BENCH_DIR:-$HOME/.cache/shardvec-bench}
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
Q=${SHARDVEC_BENCH_QUERIES:-500}

step() { printf '\n==> %s\n' "$*" >&2; }

step "build (cargo test --workspace --no-run: the shardvec binary)"
# The same build as scripts/test.sh (linted through clippy-driver), so the
# two share one compile.
if RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null)"; then
  export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
else
  unset RUSTC_WORKSPACE_WRAPPER
fi
flock "$LOCK" cargo test --workspace --locked --no-run -q 2>&1 | grep -v '^ *Executable' >&2 || true
B="$CARGO_TARGET_DIR/debug/shardvec"
[ -x "$B" ] || { echo "no $B" >&2; exit 1; }
[ -f wasm/pkg-node/shardvec_wasm.js ] || { step "wasm package"; bash scripts/wasm.sh >/dev/null; }

mkdir -p "$W"
OUT="$W/results.jsonl"
# SHARDVEC_BENCH_APPEND=1 keeps earlier results (to add a dataset).
[ "${SHARDVEC_BENCH_APPEND:-0}" = 1 ] || : >"$OUT"
# record TAGS_JSON COMMAND...: runs a command printing one JSON object and
# appends it to the results with the tags merged in.
record() {
  local tags=$1
  shift
  local json
  json=$("$@")
  python3 -c 'import json,sys; t=json.loads(sys.argv[1]); r=json.loads(sys.argv[2]); t.update(r); print(json.dumps(t))' "$tags" "$json" >>"$OUT"
}

DATASETS=("100k 100000 128 16")
[ "$QUICK" = 1 ] || DATASETS+=("500k 500000 96 32")
# SHARDVEC_BENCH_ONLY=500k runs one dataset (and the routing benchmark);
# SHARDVEC_BENCH_ONLY=headline only the headline rows (snapshots of 100k
# already built).
if [ -n "${SHARDVEC_BENCH_ONLY:-}" ]; then
  for ds in "${DATASETS[@]}"; do
    case $ds in "$SHARDVEC_BENCH_ONLY "*) DATASETS=("$ds") ;; esac
  done
  [ "$SHARDVEC_BENCH_ONLY" = headline ] && DATASETS=()
fi

for ds in "${DATASETS[@]}"; do
  read -r name n dim shards <<<"$ds"
  D="$W/$name"
  step "dataset $name: $n x $dim, $shards shards"
  [ -f "$D/data/queries.npy" ] || "$B" synth --n "$n" --dim "$dim" --clusters 256 --queries "$Q" --seed 42 --out "$D/data" >&2
  for backend in sqlite-vec lancedb; do
    for strategy in cluster lsh; do
      for metric in cosine l2; do
        snap="$D/snap-$backend-$strategy-$metric"
        if [ ! -f "$snap/_CURRENT" ]; then
          step "build $snap"
          "$B" build --input "$D/data/vectors.npy" --prefix "$snap" --strategy "$strategy" --num-dbs "$shards" \
            --metric "$metric" --backend "$backend" --num-probes 2 --seed 42 --no-progress --json >/dev/null
        fi
        tags="{\"dataset\":\"$name\",\"backend\":\"$backend\",\"strategy\":\"$strategy\",\"metric\":\"$metric\""
        step "bench $snap"
        for p in 1 2 4; do
          record "$tags,\"kind\":\"probes\"}" "$B" bench --prefix "$snap" --queries "$D/data/queries.npy" --num-probes "$p" --recall --floor --json
          # sqlite-vec's own KNN query, for comparison with the default
          # in-memory SIMD scan.
          if [ "$backend" = sqlite-vec ]; then
            record "$tags,\"kind\":\"probes\",\"scan\":\"extension\"}" "$B" bench --prefix "$snap" \
              --queries "$D/data/queries.npy" --num-probes "$p" --floor --sqlite-scan extension --json
          fi
        done
        for api in async sync; do
          for c in 1 4 16; do
            record "$tags,\"kind\":\"throughput\"}" "$B" bench --prefix "$snap" --queries "$D/data/queries.npy" --num-probes 2 \
              --concurrency "$c" --api "$api" --rounds 2 --json
          done
        done
      done
    done
  done
  for metric in cosine l2; do
    one="$D/one-lancedb-$metric"
    if [ ! -f "$one/_CURRENT" ]; then
      step "build $one (one LanceDB table, same vectors, same index rule)"
      "$B" build --input "$D/data/vectors.npy" --prefix "$one" --strategy cluster --num-dbs 1 --metric "$metric" \
        --backend lancedb --num-probes 1 --seed 42 --no-progress --json >/dev/null
    fi
    record "{\"dataset\":\"$name\",\"backend\":\"one-lancedb\",\"strategy\":\"none\",\"metric\":\"$metric\",\"kind\":\"baseline\"}" \
      "$B" bench --prefix "$one" --queries "$D/data/queries.npy" --recall --json
    for c in 1 4 16; do
      record "{\"dataset\":\"$name\",\"backend\":\"one-lancedb\",\"strategy\":\"none\",\"metric\":\"$metric\",\"kind\":\"throughput\"}" \
        "$B" bench --prefix "$one" --queries "$D/data/queries.npy" --concurrency "$c" --rounds 2 --json
    done
  done

  step "cold open from S3 (moto on 127.0.0.1)"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  moto=$!
  trap 'kill $moto 2>/dev/null || true' EXIT
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
  for _ in $(seq 50); do curl -s "http://127.0.0.1:$port" >/dev/null && break; sleep 0.2; done
  for backend in sqlite-vec lancedb; do
    snap="$D/snap-$backend-cluster-cosine"
    python3 - "$port" "$snap" "$name-$backend" <<'PY'
import os, sys, boto3
port, folder, key = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
try:
    s3.create_bucket(Bucket="bench")
except Exception:
    pass
for d, _, files in os.walk(folder):
    for f in files:
        p = os.path.join(d, f)
        s3.upload_file(p, "bench", f"{key}/{os.path.relpath(p, folder)}")
PY
    modes=(local)
    [ "$backend" = lancedb ] && modes+=(remote)
    for mode in "${modes[@]}"; do
      record "{\"dataset\":\"$name\",\"backend\":\"$backend\",\"strategy\":\"cluster\",\"metric\":\"cosine\",\"kind\":\"s3\",\"mode\":\"$mode\"}" \
        "$B" bench --prefix "s3://bench/$name-$backend" --endpoint "http://127.0.0.1:$port" --backend-mode "$mode" \
        --queries "$D/data/queries.npy" --num-probes 2 --json
    done
    record "{\"dataset\":\"$name\",\"backend\":\"$backend\",\"strategy\":\"cluster\",\"metric\":\"cosine\",\"kind\":\"s3\",\"mode\":\"file\"}" \
      "$B" bench --prefix "$snap" --queries "$D/data/queries.npy" --num-probes 2 --json
  done
  kill $moto 2>/dev/null || true
  trap - EXIT
done

# The headline: 100 000 x 128, sqlite-vec, CLUSTER, num_probes 2, against
# the floor, both scans, 5 rounds so that one noisy second of this shared
# machine does not decide it.
H="$W/100k"
for metric in cosine l2; do
  for scan in memory extension; do
    if [ -f "$H/snap-sqlite-vec-cluster-$metric/_CURRENT" ]; then
      step "headline $metric $scan"
      record "{\"dataset\":\"100k\",\"backend\":\"sqlite-vec\",\"strategy\":\"cluster\",\"metric\":\"$metric\",\"kind\":\"headline\",\"scan\":\"$scan\"}" \
        "$B" bench --prefix "$H/snap-sqlite-vec-cluster-$metric" --queries "$H/data/queries.npy" --num-probes 2 --rounds 5 \
        --floor --sqlite-scan "$scan" --json
    fi
  done
done
[ "${SHARDVEC_BENCH_ONLY:-}" = headline ] && { python3 scripts/bench_report.py "$OUT" --splice BENCHMARKS.md; exit 0; }

step "routing alone: 768-d queries, 1 024 centroids"
R="$W/route768"
[ -f "$R/data/queries.npy" ] || "$B" synth --n 20480 --dim 768 --clusters 1024 --queries 200 --seed 7 --out "$R/data" >&2
[ -f "$R/snap/_CURRENT" ] || "$B" build --input "$R/data/vectors.npy" --prefix "$R/snap" --strategy cluster --num-dbs 1024 \
  --metric cosine --backend sqlite-vec --num-probes 4 --seed 7 --no-progress --json >/dev/null
record '{"kind":"route","runtime":"native"}' "$B" bench --prefix "$R/snap" --queries "$R/data/queries.npy" --route-only --json
record '{"kind":"route","runtime":"wasm-node"}' node scripts/bench_route.mjs "$R/snap" "$R/data/queries.npy"

step "report"
python3 scripts/bench_report.py "$OUT" >"$W/report.md"
python3 scripts/bench_report.py "$OUT" --splice BENCHMARKS.md
echo "results: $OUT; tables spliced into BENCHMARKS.md" >&2
