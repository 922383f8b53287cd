#!/usr/bin/env bash
# The main job, end to end: for every peer snapshot in ../shared/fixtures/peer,
# print its info and shard table, then the routing decision for a recorded
# query next to the route the reference reader recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shardvec-target}"
cargo build -q -p shardvec --bin shardvec
exec python3 scripts/demo.py "$CARGO_TARGET_DIR/debug/shardvec" \
  "${SHARDVEC_FIXTURES:-$PWD/../shared/fixtures/peer}"
