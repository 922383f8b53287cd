#!/usr/bin/env bash
# Runs every test of shardvec: formatting, lints, the no_std build of the
# core, the WebAssembly build, a fuzz smoke run of every parser, all Rust
# test suites (unit, property, SQLite round trips, peer fixtures, writer
# round trips, S3), the Python package's pytest suite (scripts/python.sh),
# the README's demo command, and the WebAssembly package's Node and
# headless-Chromium tests (scripts/wasm.sh).
#
# The build cache lives outside the clone: $CARGO_TARGET_DIR, default
# $HOME/.cache/shardvec-target.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step() { printf '\n==> %s\n' "$*"; }

step "setup"
bash scripts/setup.sh
ensure_mold  # installed by setup.sh: export the linker flag here too

step "cargo fmt"
cargo fmt --all -- --check

step "cargo deny (licences, bans, sources; advisories when reachable)"
bash scripts/deny.sh

step "no_std core (wasm32v1-none, --no-default-features)"
cargo build -p shardvec-core --no-default-features --target wasm32v1-none --locked

step "default features: the CLI without LanceDB (what demo.sh builds first)"
# The build a new user's first `bash scripts/demo.sh` makes. It must
# compile, search sqlite-vec snapshots, and refuse LanceDB shards with an
# error that names the missing feature.
cargo build -p shardvec-cli --bin shardvec --locked
lite="$CARGO_TARGET_DIR/shardvec-default-features"
cp "$CARGO_TARGET_DIR/debug/shardvec" "$lite"
"$lite" --version | grep -q 'features: sqlite-vec, aws)'
fixtures=tests/fixtures/peer
"$lite" search --prefix "$fixtures/sqlitevec_cluster_cosine" --local-root "$(mktemp -d)" \
  --query "$(python3 -c 'import json; print(json.dumps(json.load(open("'"$fixtures"'/sqlitevec_cluster_cosine.json"))["queries"][0]["query"]))')" --json >/dev/null
if out=$("$lite" search --prefix "$fixtures/lancedb_cluster_l2" --local-root "$(mktemp -d)" \
  --query "$(python3 -c 'import json; print(json.dumps(json.load(open("'"$fixtures"'/lancedb_cluster_l2.json"))["queries"][0]["query"]))')" --num-probes 5 2>&1); then
  echo "a LanceDB search succeeded without the lancedb feature: $out"; exit 1
fi
echo "$out" | grep -q 'enable the cargo feature `lancedb`' || { echo "unexpected error: $out"; exit 1; }
echo "default-feature build: sqlite-vec searched, LanceDB refused naming the feature"

step "fuzz smoke run"
bash scripts/fuzz.sh

step "cargo test build, linted by clippy"
# One compile of the workspace serves both the tests and the lints:
# clippy-driver compiles the workspace crates (RUSTC_WORKSPACE_WRAPPER, as
# `cargo clippy` itself does) and fails on any lint (-D warnings, passed the
# way cargo-clippy passes it); dependencies build once, normally. A
# separate `cargo clippy --all-targets` would check every dependency again:
# about 11 minutes on a fresh machine. demo.sh builds with the same
# environment, so nothing is compiled twice; fuzz.sh and wasm.sh unset it.
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --workspace --locked --no-run

step "cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
rust=$(awk '/^test result:/ { p += $4; f += $6 } END { printf "%d %d", p, f }' "$log")

step "python package: pytest on the extension of the test build"
plog=$(mktemp)
bash scripts/python.sh 2>&1 | tee "$plog"
py=$(awk '/^python tests:/ { print $3, $5 }' "$plog" | tail -n 1)
rm -f "$plog"

step "demo, as the README runs it"
bash scripts/demo.sh --dir "$(mktemp -d)"

step "wasm package: Node and browser tests"
wlog=$(mktemp)
bash scripts/wasm.sh 2>&1 | tee "$wlog"
wasm=$(awk '/^wasm tests:/ { print $3, $5 }' "$wlog" | tail -n 1)
rm -f "$wlog"
# One closing line for the whole run, summed over every test binary and the
# wasm suites.
read -r rp rf <<<"$rust"
read -r wp wf <<<"${wasm:-0 0}"
read -r pp pf <<<"${py:-0 0}"
printf '\nall tests: %d passed, %d failed\n' $((rp + wp + pp)) $((rf + wf + pf))
