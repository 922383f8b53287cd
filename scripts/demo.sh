#!/usr/bin/env bash
# The main job, end to end, with no other setup:
#  1. `shardvec demo`: generate a clustered dataset, build a local snapshot
#     from it, search it, show routing decisions and recall per num_probes;
#  2. every peer snapshot in tests/fixtures/peer (written by the Python
#     reference): info, shard table, routing decision and search, next to
#     what the reference recorded.
#
# The first run builds the CLI with its default features (sqlite-vec, S3):
# a few minutes on a fresh machine. LanceDB shards need the `lancedb`
# feature, whose Arrow/DataFusion stack takes most of half an hour to
# compile; `--full` builds it (the same build as the tests), and a full
# build that already exists (scripts/test.sh makes one) is always used.
# Without it, the LanceDB peer snapshots are routed but not searched.
#
# Usage: bash scripts/demo.sh [--full] [shardvec demo arguments, e.g.
# --dir DIR --vectors N --dim D --shards S]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_mold

full=0
args=()
for a in "$@"; do
  if [ "$a" = "--full" ]; then full=1; else args+=("$a"); fi
done

bin="$CARGO_TARGET_DIR/debug/shardvec"
has_lancedb() { [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q 'lancedb'; }
if [ "$full" = 1 ] || has_lancedb; then
  # The test build: `cargo test` builds the binary with the workspace's
  # full feature set, so the demo and the tests compile everything once.
  ensure_protoc
  cargo test --workspace --locked --no-run
else
  cargo build -p shardvec-cli --bin shardvec --locked
fi
"$bin" --version
"$bin" demo "${args[@]}"
fixtures="${SHARDVEC_FIXTURES:-$PWD/tests/fixtures/peer}"
printf '\n== 5. the reference'"'"'s snapshots, read by shardvec\n'
python3 scripts/demo.py "$bin" "$fixtures"
