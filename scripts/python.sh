#!/usr/bin/env bash
# Tests the Python package `shardvec` (python/): the extension module built
# by the workspace's test build (`cargo test --workspace`, the same profile
# and target dir as everything else, so nothing is compiled twice) is put
# next to python/shardvec/__init__.py, and pytest runs python/tests against
# the peer fixtures.
#
# Installs what it needs when missing: numpy and pytest, and the engines of
# the distributed builds' tests, dask[distributed], ray and pyarrow (PyPI).
# Ends with one line `python tests: N passed, M failed`; exits non-zero on
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if ! python3 -c 'import numpy, pytest, distributed, ray, pyarrow' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check numpy pytest "dask[distributed]" ray pyarrow
fi
# Cargo copies the cdylib to debug/ at the end of a successful build; deps/
# holds it as soon as it is linked.
lib="$CARGO_TARGET_DIR/debug/lib_shardvec.so"
[ -f "$lib" ] || lib="$CARGO_TARGET_DIR/debug/deps/lib_shardvec.so"
if [ ! -f "$lib" ]; then
  echo "$lib is missing: run the workspace's test build first (cargo test --workspace)" >&2
  exit 1
fi
# The stable ABI's suffix: one build serves every CPython ≥ 3.9.
cp "$lib" python/shardvec/_shardvec.abi3.so

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# Dask's and Ray's worker processes import the package from here too.
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
(cd python && python3 -m pytest tests -q -p no:cacheprovider) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -oE '[0-9]+ passed' "$log" | tail -n 1 | awk '{print $1}' || true)
failed=$( (grep -oE '[0-9]+ (failed|error)' "$log" || true) | awk '{s += $1} END {print s + 0}')
printf 'python tests: %d passed, %d failed\n' "${passed:-0}" "${failed:-0}"
exit "$status"
