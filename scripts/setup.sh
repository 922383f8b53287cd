#!/usr/bin/env bash
# Installs what the tests need on a fresh machine (idempotent: quick when
# everything is already there). Needs: rustup, cargo, network access to the
# Rust distribution server and crates.io.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

rustup component add rustfmt clippy >/dev/null
# wasm32v1-none proves the core is no_std; wasm32-unknown-unknown is the
# target of the wasm package.
rustup target add wasm32v1-none wasm32-unknown-unknown >/dev/null
# cargo fuzz needs nightly (sanitizer flags).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! have cargo-fuzz; then
  cargo install cargo-fuzz --locked
fi
