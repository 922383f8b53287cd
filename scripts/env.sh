# Sourced by the scripts that build: one target dir outside the clone, the
# linker, and helpers. Every script builds with exactly these settings, so
# their builds share one cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shardvec-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Link with Debian's mold (scripts/setup.sh installs it): the test binary
# links the whole LanceDB stack. A flag, not a linker path, so the build
# cache does not depend on where the clone is.
# Only when the C compiler can use it (GCC 12.1 or later).
use_mold() {
  if command -v mold >/dev/null 2>&1 &&
    echo 'int main(void) { return 0; }' | cc -fuse-ld=mold -x c - -o /dev/null 2>/dev/null; then
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS:--C link-arg=-fuse-ld=mold}"
  fi
}
use_mold

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# protoc: the lancedb crate compiles protobuf definitions.
ensure_protoc() { command -v protoc >/dev/null 2>&1 || apt_install protobuf-compiler; }

# mold, then the flag that links with it (see above).
ensure_mold() {
  command -v mold >/dev/null 2>&1 || apt_install mold || true
  use_mold
}
