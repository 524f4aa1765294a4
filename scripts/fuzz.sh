#!/usr/bin/env bash
# Fuzzes the pgoutput codec and the transaction assembler with libFuzzer.
#
# Usage: scripts/fuzz.sh [SECONDS]      (default 600: 10 minutes in all)
#
# Builds every tests/fuzz/fuzz_*.cpp target with clang++ and -DPGSHIFT_FUZZ=ON
# in build-fuzz/ (installing clang with apt-get if it is missing), with
# ASan + UBSan, and runs each target for SECONDS / <number of targets> over its
# checked-in seed corpus tests/fuzz/corpus/<target>/. The whole library is
# compiled with -fsanitize=fuzzer-no-link so that libFuzzer sees the coverage
# of the codec and the assembler, not only of the target file.
#
# New inputs are kept in build-fuzz/corpus/<target>/ (the checked-in seeds are
# never modified); a crash, leak, sanitizer report or timeout is written to
# build-fuzz/artifacts/<target>-crash-* (or leak-/timeout-/oom-) and makes the
# script fail. Reproduce one with: build-fuzz/tests/<target> ARTIFACT
# Environment: FUZZ_TARGETS="fuzz_codec" to run a subset; FUZZ_ARGS for extra
# libFuzzer flags; FUZZ_CXXFLAGS for extra compiler flags (e.g.
# -Wno-error=<warning> while the tree has a clang-only warning).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOTAL=${1:-600}
BUILD=$ROOT/build-fuzz
if ! [[ $TOTAL =~ ^[0-9]+$ ]] || ((TOTAL < 2)); then
    echo "usage: scripts/fuzz.sh [SECONDS]   (at least 2)" >&2
    exit 2
fi

# --- toolchain ----------------------------------------------------------------
"$ROOT/scripts/deps.sh"
if ! command -v clang++ >/dev/null; then
    echo "fuzz: installing clang" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq clang >/dev/null
fi

# --- build --------------------------------------------------------------------
if [[ -n ${FUZZ_TARGETS:-} ]]; then
    read -r -a TARGETS <<<"$FUZZ_TARGETS"
else
    TARGETS=()
    for src in "$ROOT"/tests/fuzz/fuzz_*.cpp; do
        TARGETS+=("$(basename "$src" .cpp)")
    done
fi
GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $SAN ${FUZZ_CXXFLAGS:-}" \
    -DCMAKE_EXE_LINKER_FLAGS="$SAN" \
    -DPGSHIFT_FUZZ=ON -DPGSHIFT_BUILD_TESTS=ON -DPGSHIFT_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target "${TARGETS[@]}"

# --- run ----------------------------------------------------------------------
PER=$((TOTAL / ${#TARGETS[@]}))
mkdir -p "$BUILD/artifacts"
# Leaks, sanitizer reports, timeouts and OOMs all count as failures.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${TARGETS[@]}"; do
    seeds=$ROOT/tests/fuzz/corpus/$t
    work=$BUILD/corpus/$t
    mkdir -p "$work"
    log=$BUILD/$t.log
    echo "fuzz: $t for ${PER}s (seeds: ${seeds#"$ROOT"/}, log: ${log#"$ROOT"/})"
    # shellcheck disable=SC2086
    if "$BUILD/tests/$t" -max_total_time="$PER" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t-" ${FUZZ_ARGS:-} \
        "$work" "$seeds" >"$log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|^#[0-9]+.*DONE' \
            "$log" | sed 's/^/  /' || true
    else
        echo "fuzz: $t FAILED; see $log and $BUILD/artifacts/" >&2
        grep -E '^==[0-9]+==ERROR|^SUMMARY|runtime error|fuzz_[a-z]+: |Test unit written' "$log" |
            head -n 20 | sed 's/^/  /' >&2 || true
        failed+=("$t")
    fi
done
if ((${#failed[@]} > 0)); then
    echo "fuzz: crashes found in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: no crash in ${TARGETS[*]} (${PER}s each)"
