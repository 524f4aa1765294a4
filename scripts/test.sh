#!/usr/bin/env bash
# Builds pgshift and runs every test: unit, fuzz-corpus, integration and
# scenario tests against a throwaway PostgreSQL cluster (started and stopped
# by ctest), then the unit and fuzz-corpus tests again under ASan/UBSan.
# Installs missing Debian packages first. Works as root or as a normal user.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/deps.sh
scripts/build.sh "$ROOT/build"
(cd build && ctest --output-on-failure --timeout 900)
if [ "${PGSHIFT_SKIP_SANITIZERS:-0}" != 1 ]; then
  if [ ! -f build-asan/CMakeCache.txt ]; then
    GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
    cmake -S . -B build-asan "${GEN[@]}" -DCMAKE_BUILD_TYPE=Debug -DPGSHIFT_SANITIZE=ON >/dev/null
  fi
  cmake --build build-asan -j "$(nproc)"
  (cd build-asan && ctest --output-on-failure -L unit)
fi
