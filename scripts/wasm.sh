#!/usr/bin/env bash
# Builds the WebAssembly package `shardvec-wasm` and tests it: the Node tests
# (tests/wasm/, every peer fixture, the golden files, errors, HTTP loading,
# the edge client against native hosts), the edge examples in workerd
# (miniflare) and Deno (tests/edge/) and the browser demo in headless
# Chromium (tests/web/).
#
# Installs what it needs when missing (idempotent, quick when present):
# wasm-bindgen-cli at exactly the version of `wasm-bindgen` in Cargo.lock,
# the npm tooling of tests/web (binaryen's wasm-opt 132,
# playwright-core; no browser download), the edge runtimes of tests/edge
# (miniflare with workerd, deno) and Debian's chromium.
#
# Outputs (gitignored): web-demo/pkg (--target web, what the demo page
# loads; copied to examples/cloudflare-worker/pkg and examples/deno/pkg),
# wasm/pkg-node (--target nodejs), tests/web/artifacts (screenshots).
# Builds go to $SHARDVEC_WASM_TARGET_DIR (default
# ~/.cache/shardvec-wasm-target); every cargo run holds the lock
# /tmp/shardvec-cargo.lock so that it never runs beside another build.
#
# Ends with one line `wasm tests: N passed, M failed`; exits non-zero on
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# test.sh lints the native build through clippy-driver; not this one.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
ROOT=$PWD
LOCK=${SHARDVEC_CARGO_LOCK:-/tmp/shardvec-cargo.lock}
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# cargo install builds in a temporary folder, not in a shared target dir.
# With the tool's own lock file when the registry has every version it
# names; otherwise with the newest compatible versions.
cargo_install() {
  flock "$LOCK" env -u CARGO_TARGET_DIR bash -c \
    'cargo install --locked "$@" || { echo "(retrying without --locked)"; cargo install "$@"; }' _ "$@"
}

step "tools"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$BINDGEN_VERSION" ]; then
  cargo_install wasm-bindgen-cli --version "$BINDGEN_VERSION"
fi
if [ ! -x tests/web/node_modules/.bin/wasm-opt ] || [ ! -d tests/web/node_modules/playwright-core ] ||
  [ tests/web/package-lock.json -nt tests/web/node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/web --no-audit --no-fund --loglevel=error
fi
if [ ! -x tests/edge/node_modules/.bin/workerd ] || [ ! -x tests/edge/node_modules/.bin/deno ] ||
  [ tests/edge/package-lock.json -nt tests/edge/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/edge --no-audit --no-fund --loglevel=error
fi
CHROMIUM=${SHARDVEC_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "wasm-bindgen $BINDGEN_VERSION, wasm-opt $(tests/web/node_modules/.bin/wasm-opt --version | awk '{print $3}'), $("$CHROMIUM" --version 2>/dev/null || echo 'chromium ?')"
echo "workerd $(tests/edge/node_modules/.bin/workerd --version | awk '{print $2}'), $(tests/edge/node_modules/.bin/deno --version | head -1)"

# The edge tests start native hosts: the binary of the Rust test build.
export SHARDVEC_BIN=${SHARDVEC_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/shardvec-target}/debug/shardvec}

step "build (cargo, then wasm-bindgen --target web and --target nodejs)"
export CARGO_TARGET_DIR=${SHARDVEC_WASM_TARGET_DIR:-$HOME/.cache/shardvec-wasm-target}
# Size: the workspace's [profile.release] serves the native binaries; these
# overrides apply to this build only (its own target dir).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_DEBUG=false \
  CARGO_PROFILE_RELEASE_PANIC=abort
# WebAssembly SIMD (simd128): the core's distance kernel sums in f32x4 lanes
# (core/src/distance.rs), routing about 3.5x faster with the same bits as
# the native build. One build for every runtime the package targets: Node,
# Deno, workerd and every current browser run simd128 (a runtime without it
# rejects the module when it compiles it). Set here, for this target only,
# so the native builds and their cache are untouched; set to an empty
# string for a scalar build. (RUSTFLAGS, when set, replaces it: the SIMD
# test, tests/wasm/simd.test.mjs, then fails naming the missing feature.)
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS--C target-feature=+simd128}"
# What wasm-pack did, without wasm-pack (a cargo install of several minutes
# on a fresh machine): one cargo build, wasm-bindgen per target, and the
# package.json of each package.
flock "$LOCK" cargo build -p shardvec-wasm --release --target wasm32-unknown-unknown --locked
built="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/shardvec_wasm.wasm"
package_json() { # $1: out dir, $2: "module" for ES modules
  node -e '
    const [dir, kind, version] = process.argv.slice(1);
    const files = ["shardvec_wasm_bg.wasm", "shardvec_wasm.js", "shardvec_wasm.d.ts"];
    const pkg = {
      name: "shardvec-wasm",
      ...(kind === "module" ? { type: "module" } : {}),
      description: "shardvec routing and merge for edge workers and browsers (WebAssembly)",
      version, license: "Apache-2.0", files,
      main: "shardvec_wasm.js", types: "shardvec_wasm.d.ts",
    };
    require("fs").writeFileSync(dir + "/package.json", JSON.stringify(pkg, null, 2) + "\n");
  ' "$1" "$2" "$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)"
}
rm -rf web-demo/pkg wasm/pkg-node
wasm-bindgen --target web --out-dir web-demo/pkg "$built"
package_json web-demo/pkg module
wasm-bindgen --target nodejs --out-dir wasm/pkg-node "$built"
package_json wasm/pkg-node commonjs

step "wasm-opt -Oz"
# The features rustc enables by default for wasm32-unknown-unknown, and
# simd128 (above).
FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd)
for wasm in web-demo/pkg/shardvec_wasm_bg.wasm wasm/pkg-node/shardvec_wasm_bg.wasm; do
  before=$(stat -c %s "$wasm")
  tests/web/node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers "${FEATURES[@]}" "$wasm" -o "$wasm.opt"
  mv "$wasm.opt" "$wasm"
  echo "$wasm: $before -> $(stat -c %s "$wasm") bytes ($(gzip -9 -c "$wasm" | wc -c) gzipped)"
done

# The edge examples import the --target web build from their own pkg/.
for example in examples/cloudflare-worker examples/deno; do
  rm -rf "$example/pkg"
  cp -r web-demo/pkg "$example/pkg"
done

step "tests (node --test: tests/wasm, tests/edge, tests/web)"
mkdir -p tests/web/artifacts
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
SHARDVEC_CHROMIUM="$CHROMIUM" node --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$log" \
  tests/wasm/*.test.mjs tests/edge/*.test.mjs tests/web/*.test.mjs || status=$?
pass=$(awk '/^# pass / { s += $3 } END { print s + 0 }' "$log")
fail=$(awk '/^# fail / { s += $3 } END { print s + 0 }' "$log")
if [ "$status" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
echo
echo "wasm tests: $pass passed, $fail failed"
exit "$status"
