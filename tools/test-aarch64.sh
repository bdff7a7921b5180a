#!/usr/bin/env bash
# Build the workspace for 64-bit ARM (aarch64 Linux: phones, boards) and run
# its tests under QEMU's user-mode emulator, so the NEON kernels are checked
# against their reference twins like the x86 ones. Emulation checks results,
# not speed.
#
# Needs the rustup target `aarch64-unknown-linux-gnu`, a cross linker
# (`aarch64-linux-gnu-gcc`) and `qemu-aarch64`; installs whatever is missing
# (rustup, apt-get). Where that is impossible it says so and exits 0 with
# SKIPPED, unless FERROLITE_REQUIRE_AARCH64=1, which makes it an error.
#
# usage: tools/test-aarch64.sh [extra `cargo test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
skip() {
  echo "aarch64 tests SKIPPED: $*" >&2
  if [ "${FERROLITE_REQUIRE_AARCH64:-0}" = 1 ]; then exit 1; fi
  exit 0
}
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "== installing the Rust target $target"
  timeout 600 rustup target add "$target" || skip "rustup could not install $target"
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  echo "== installing the aarch64 cross linker and qemu-user"
  pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
  # A fresh machine may have no package lists yet: update once and retry.
  as_root timeout 900 apt-get install -y -q $pkgs >/dev/null \
    || { as_root timeout 600 apt-get update -q >/dev/null && as_root timeout 900 apt-get install -y -q $pkgs >/dev/null; } \
    || skip "apt-get could not install $pkgs"
fi

sysroot=/usr/aarch64-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot"
# The CLI tests start the binary themselves.
export FERROLITE_CLI_RUNNER="$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER"
# Its own build directory: the host's stays warm.
export CARGO_TARGET_DIR="${FERROLITE_AARCH64_TARGET_DIR:-target/aarch64-cross}"

echo "== aarch64: the CPU levels the emulated CPU reports"
cargo test --release --target "$target" -p ferrolite-kernels --lib -- --nocapture isa::tests 2>&1 | grep -E "^(test |levels)" || true
echo "== aarch64: cargo test --workspace (release, under qemu-aarch64)"
cargo test --release --target "$target" --workspace "$@"
echo "== aarch64: the whole-model tests again without the dot product (FERROLITE_MAX_ISA=neon)"
FERROLITE_MAX_ISA=neon cargo test --release --target "$target" --workspace \
  --test quantized_models --test float_models --test hybrid_models --test threads
