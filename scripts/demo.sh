#!/usr/bin/env bash
# The main job, end to end, with no other setup:
#  1. `shardvec demo`: generate a clustered dataset, build a local snapshot
#     from it, search it, show routing decisions and recall per num_probes;
#  2. every peer snapshot in ../shared/fixtures/peer (written by the Python
#     reference): info, shard table, routing decision and search, next to
#     what the reference recorded.
# Arguments are passed to `shardvec demo` (e.g. --dir DIR --vectors N).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shardvec-target}"
# The lancedb crate compiles protobuf definitions: protoc, from Debian.
if ! command -v protoc >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null;
  else sudo apt-get update -qq && sudo apt-get install -y -qq protobuf-compiler >/dev/null; fi
fi
# The same build as the tests (`cargo test` builds the binary with the
# workspace's test feature set): running the demo and the tests on one
# machine compiles the LanceDB stack once, not twice.
cargo test --workspace --locked --no-run
"$CARGO_TARGET_DIR/debug/shardvec" demo "$@"
fixtures="${SHARDVEC_FIXTURES:-$PWD/../shared/fixtures/peer}"
if [ -d "$fixtures" ]; then
  printf '\n== 5. the reference'"'"'s snapshots, read by shardvec\n'
  python3 scripts/demo.py "$CARGO_TARGET_DIR/debug/shardvec" "$fixtures"
fi
