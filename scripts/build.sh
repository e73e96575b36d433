#!/usr/bin/env bash
# Configures and builds tixport into BUILD_DIR (default build/), Release unless told.
# Extra arguments go to cmake's configure step, e.g. -DTIXPORT_SANITIZE="address;undefined".
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@"
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
