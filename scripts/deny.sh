#!/usr/bin/env bash
# cargo deny: licences, bans and sources (deny.toml), and advisories when the
# RustSec database can be fetched (it lives on GitHub). Installs cargo-deny
# when missing. Not run by CI (see RELIABILITY.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null 2>&1; then
  env -u CARGO_TARGET_DIR cargo install cargo-deny --locked
fi
cargo deny --workspace check licenses bans sources
if cargo deny --workspace check advisories; then
  echo "advisories: checked"
else
  echo "advisories: FAILED or the database could not be fetched (see above)" >&2
  exit 1
fi
