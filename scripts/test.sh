#!/usr/bin/env bash
# Runs every test of shardvec: formatting, lints, the no_std build of the
# core, the WebAssembly build, a fuzz smoke run of every parser, and all Rust
# test suites (unit, property, SQLite round trips, peer fixtures).
#
# The build cache lives outside the clone: $CARGO_TARGET_DIR, default
# $HOME/.cache/shardvec-target.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shardvec-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "setup"
bash scripts/setup.sh

step "cargo fmt"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "no_std core (wasm32v1-none, --no-default-features)"
cargo build -p shardvec-core --no-default-features --target wasm32v1-none --locked

step "wasm package (wasm32-unknown-unknown)"
cargo build -p shardvec-wasm --target wasm32-unknown-unknown --locked

step "fuzz smoke run"
bash scripts/fuzz.sh

step "cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nall tests: %d passed, %d failed\n", p, f }' "$log"
