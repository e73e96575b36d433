#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cpp) with clang into build-fuzz/
# (ASan + UBSan, the library instrumented for coverage) and runs each one for
# FUZZ_SECONDS (default 30) from its seed corpus in tests/fuzz/corpus/<target>/.
# Fails when any target finds a crash, a sanitizer report, a leak, a timeout or
# a broken oracle; the input that did it is left in build-fuzz/artifacts/.
#
#   TIXPORT_WITH_FUZZ=1 bash scripts/install-deps.sh   # clang, libclang-rt-14-dev
#   FUZZ_SECONDS=30 bash scripts/fuzz.sh                # every target
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh csv_reader    # one target, longer
#   build-fuzz/csv_reader_fuzz build-fuzz/artifacts/csv_reader-crash-...   # replay one input
#
# New inputs that found coverage are kept in build-fuzz/corpus/<target>/ (not
# committed), so later runs on the same machine start from where this one ended.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build-fuzz}"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"

# Longest input per target: enough for several records / entries, short enough
# that each run stays fast and the fuzzer's mutations stay local.
declare -A MAX_LEN=(
  [field_parsers]=128
  [json_batch_encoder]=4096
  [csv_reader]=4096
  [email_index_page]=4096
  [archive_verifier]=16384
)

all_targets=()
for src in tests/fuzz/*_fuzz.cpp; do
  name="$(basename "$src" .cpp)"
  all_targets+=("${name%_fuzz}")
done
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then targets=("${all_targets[@]}"); fi

GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTIXPORT_BUILD_FUZZ=ON -DTIXPORT_BUILD_TESTS=OFF -DTIXPORT_BUILD_BENCH=OFF
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=("${t}_fuzz"); done
build_start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${build_targets[@]}"
echo "fuzz: built ${#build_targets[@]} targets in $(( $(date +%s) - build_start )) s"

# Sanitizer reports end the run with a crash (the library is built with
# -fno-sanitize-recover=all; halt_on_error covers the target files too).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

mkdir -p "$BUILD_DIR/artifacts"
failed=()
for t in "${targets[@]}"; do
  seeds="tests/fuzz/corpus/$t"
  work="$BUILD_DIR/corpus/$t"
  mkdir -p "$work"
  dict=()
  if [ -f "tests/fuzz/$t.dict" ]; then dict=(-dict="tests/fuzz/$t.dict"); fi
  echo "== fuzz: $t for ${FUZZ_SECONDS} s (max_len ${MAX_LEN[$t]:-4096})"
  start=$(date +%s)
  # The first directory receives new inputs; the seed directory is only read.
  if "$BUILD_DIR/${t}_fuzz" "$work" "$seeds" "${dict[@]}" \
      -max_total_time="$FUZZ_SECONDS" -max_len="${MAX_LEN[$t]:-4096}" -timeout=20 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/$t-" >"$BUILD_DIR/$t.log" 2>&1; then
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$BUILD_DIR/$t.log" | grep -Eo '[0-9]+$' || echo '?')
    cov=$(grep -Eo 'cov: [0-9]+' "$BUILD_DIR/$t.log" | tail -n 1 || true)
    echo "fuzz: $t ok: $runs runs, $cov, $(find "$work" -type f | wc -l) inputs kept in $work, $(( $(date +%s) - start )) s"
  else
    echo "fuzz: $t FAILED; last lines of $BUILD_DIR/$t.log:"
    tail -n 60 "$BUILD_DIR/$t.log"
    failed+=("$t")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failures in: ${failed[*]}; inputs in $BUILD_DIR/artifacts/:"
  ls -l "$BUILD_DIR/artifacts/"
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${FUZZ_SECONDS} s each without a finding"
