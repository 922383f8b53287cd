#!/usr/bin/env bash
# cargo deny (deny.toml): licences, bans and sources, which need nothing but
# Cargo.lock and the registry; then advisories, which need the RustSec
# database from GitHub. Where GitHub cannot be reached (CI has network
# access to package registries only) the advisory check is reported as not
# run, with the reason; everything else must pass. Installs cargo-deny when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null 2>&1; then
  env -u CARGO_TARGET_DIR cargo install cargo-deny --locked
fi
cargo deny --workspace check licenses bans sources
if git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny --workspace check advisories
else
  echo "advisories: NOT CHECKED: the RustSec database (github.com/RustSec/advisory-db) is unreachable from this machine"
fi
