#!/usr/bin/env bash
# Build the workspace for ARM Linux and run its tests under QEMU's user-mode
# emulator: `aarch64` (64-bit ARM: phones, boards; the NEON and dot-product
# kernels are checked against their reference twins like the x86 ones) or
# `armv7` (32-bit ARM boards: portable kernels, and a 32-bit usize, which
# the model checks and the arena must survive). Emulation checks results,
# not speed.
#
# Needs the rustup target, a cross linker and qemu-user; installs whatever
# is missing (rustup, apt-get). Where that is impossible it says so and
# exits 0 with SKIPPED, unless FERROLITE_REQUIRE_CROSS=1, which makes it an
# error.
#
# usage: tools/test-cross.sh aarch64|armv7 [extra `cargo test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${1:?usage: tools/test-cross.sh aarch64|armv7 [cargo test args]}"
shift
case "$arch" in
  aarch64)
    target=aarch64-unknown-linux-gnu gcc=aarch64-linux-gnu-gcc sysroot=/usr/aarch64-linux-gnu
    qemu=qemu-aarch64 pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" ;;
  armv7)
    target=armv7-unknown-linux-gnueabihf gcc=arm-linux-gnueabihf-gcc sysroot=/usr/arm-linux-gnueabihf
    qemu=qemu-arm pkgs="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user" ;;
  *) echo "unknown architecture '$arch' (aarch64 or armv7)" >&2; exit 2 ;;
esac

skip() {
  echo "$arch tests SKIPPED: $*" >&2
  if [ "${FERROLITE_REQUIRE_CROSS:-0}" = 1 ]; then exit 1; fi
  exit 0
}
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "== installing the Rust target $target"
  timeout 600 rustup target add "$target" || skip "rustup could not install $target"
fi
if ! command -v "$gcc" >/dev/null || ! command -v "$qemu" >/dev/null; then
  echo "== installing the $arch cross linker and qemu-user"
  # A fresh machine may have no package lists yet: update once and retry.
  as_root timeout 900 apt-get install -y -q $pkgs >/dev/null \
    || { as_root timeout 600 apt-get update -q >/dev/null && as_root timeout 900 apt-get install -y -q $pkgs >/dev/null; } \
    || skip "apt-get could not install $pkgs"
fi

upper=$(echo "$target" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${upper}_LINKER=$gcc"
export "CARGO_TARGET_${upper}_RUNNER=$qemu -L $sysroot"
# The CLI tests start the binary themselves.
export FERROLITE_CLI_RUNNER="$qemu -L $sysroot"
# Its own build directory: the host's stays warm.
export CARGO_TARGET_DIR="${FERROLITE_CROSS_TARGET_DIR:-target/cross-$arch}"

echo "== $arch: the CPU levels the emulated CPU reports"
cargo test --release --target "$target" -p ferrolite-kernels --lib -- --nocapture isa::tests 2>&1 | grep -E "^(test |levels)" || true
echo "== $arch: cargo test --workspace (release, under $qemu)"
cargo test --release --target "$target" --workspace "$@"
if [ "$arch" = aarch64 ]; then
  echo "== aarch64: the whole-model tests again without the dot product (FERROLITE_MAX_ISA=neon)"
  FERROLITE_MAX_ISA=neon cargo test --release --target "$target" --workspace \
    --test quantized_models --test float_models --test hybrid_models --test threads
fi
