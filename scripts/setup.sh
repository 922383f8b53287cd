#!/usr/bin/env bash
# Installs what the tests need on a fresh machine (idempotent: quick when
# everything is already there). Needs: rustup, cargo, Python 3 with pip, and
# network access to the Rust distribution server, crates.io and PyPI.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/env.sh
have() { command -v "$1" >/dev/null 2>&1; }

# protoc (the lancedb crate compiles protobuf definitions) and mold (the
# linker scripts/env.sh selects).
ensure_protoc
ensure_mold

rustup component add rustfmt clippy >/dev/null
# wasm32v1-none proves the core is no_std; wasm32-unknown-unknown is the
# target of the wasm package.
rustup target add wasm32v1-none wasm32-unknown-unknown >/dev/null
# cargo fuzz needs nightly (sanitizer flags).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! have cargo-fuzz; then
  env -u CARGO_TARGET_DIR cargo install cargo-fuzz --locked
fi
# A real S3-compatible server for the S3 tests: moto's server mode.
if ! python3 -c 'import moto.server, flask' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
fi
