#!/usr/bin/env bash
# File: perf/scaling_model.sh
#
# Issue 14, the scaling model (perf/SCALING.md): per stage of `tixport run`, the part that
# runs in parallel and the serial part, from --threads 1 and --threads 2 on one export,
# and Amdahl projections of the wall time at 8, 32 and 64 cores. Then the throughput
# sweeps for perf/plots: rows/s against --threads (OVERSUB adds labelled points with more
# threads than cores) and against the export size.
#
#   bash perf/scaling_model.sh                         # 1M rows, 3 rounds, then the size sweep
#   SWEEP_SIZES="" bash perf/scaling_model.sh           # threads only
#
# Every run goes through perf/proc_sampler.py, so each run has its wall and CPU time (wait4),
# its process CPU every ~10 ms and the count of its threads that used CPU in each sample.
# Rounds alternate the configurations (T=1, T=2, [OVERSUB], T=1, ...) so drifting load hits
# them alike. Per stage (the report's stage seconds; the stages run one after another,
# placed on the timeline from the run's end), the script derives:
#   - wall T1, T2: median stage seconds at --threads 1 and 2
#   - the serial fraction e = 2*T2/T1 - 1 (Karp-Flatt with p = 2; clipped to [0, 1])
#   - CPU: the process CPU spent inside the stage's window (T=1 and T=2), and CPU / wall
#   - Amdahl: T(n) = T1 * (e + (1 - e) / n), and n_half = (1 - e) / e, the core count at
#     which the stage's parallel part has shrunk to its serial part (50% efficiency)
# The time outside the stages (start-up, commit, the report) counts as serial.
#
# Variables: TIXPORT (build/tixport), ROWS (1000000), REPEATS (3), FORMATS ("tar.zst tar"),
# OVERSUB ("4"), SWEEP_SIZES ("100000 1000000 2500000 10000000 27700000"), SWEEP_THREADS (2),
# SWEEP_REPEATS (3; 1 for sizes of 10M rows and more), DATA_DIR (perf/data),
# PLOTS (perf/plots), MIN_FREE_GB (25: a missing export is generated only with that free).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
TIXPORT=${TIXPORT:-build/tixport} ROWS=${ROWS:-1000000} REPEATS=${REPEATS:-3}
FORMATS=${FORMATS:-tar.zst tar} OVERSUB=${OVERSUB-4}
SWEEP_SIZES=${SWEEP_SIZES-100000 1000000 2500000 10000000 27700000} SWEEP_THREADS=${SWEEP_THREADS:-2}
SWEEP_REPEATS=${SWEEP_REPEATS:-3} DATA_DIR=${DATA_DIR:-perf/data} PLOTS=${PLOTS:-perf/plots}
MIN_FREE_GB=${MIN_FREE_GB:-25} SEED=${SEED:-1}
[ -x "$TIXPORT" ] || { echo "scaling_model: no binary $TIXPORT" >&2; exit 2; }
mkdir -p "$DATA_DIR" "$PLOTS"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$DATA_DIR/scaling_$STAMP
mkdir -p "$OUT"
RUNS=$OUT/runs.tsv
printf 'kind\trows\tformat\tthreads\tround\tsample\treport\tload_before\tload_after\n' >"$RUNS"

ensure_export() {
  local rows=$1
  if [ ! -f "$DATA_DIR/chat_$rows.csv" ] || [ ! -f "$DATA_DIR/users_$rows.csv" ]; then
    local free
    free=$(df -B1G --output=avail "$DATA_DIR" | tail -n 1 | tr -d ' ')
    if [ "$free" -lt "$MIN_FREE_GB" ]; then
      echo "scaling_model: skipping $rows rows: $free GB free, less than MIN_FREE_GB=$MIN_FREE_GB" >&2
      return 1
    fi
    "$TIXPORT" generate -q --rows "$rows" --seed "$SEED" --output "$DATA_DIR/chat_$rows.csv" \
      --users-output "$DATA_DIR/users_$rows.csv"
  fi
}

# one KIND ROWS FORMAT THREADS ROUND: one sampled run, one line in $RUNS.
one() {
  local kind=$1 rows=$2 format=$3 threads=$4 round=$5
  local tag=${kind}_${rows}_${format}_t${threads}_r${round} before
  before=$(cut -d' ' -f1 /proc/loadavg)
  python3 perf/proc_sampler.py --timeline "$OUT/$tag.timeline.tsv" --log "$OUT/$tag.log" -- \
    "$TIXPORT" run --no-progress --input "$DATA_DIR/chat_$rows.csv" --users-file "$DATA_DIR/users_$rows.csv" \
    --threads "$threads" --output "$OUT/out.$format" --report "$OUT/$tag.report.json" >"$OUT/$tag.sample.json"
  rm -f "$OUT/out.$format"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$rows" "$format" "$threads" "$round" \
    "$OUT/$tag.sample.json" "$OUT/$tag.report.json" "$before" "$(cut -d' ' -f1 /proc/loadavg)" >>"$RUNS"
  echo "$tag: $(cat "$OUT/$tag.sample.json")" >&2
}

LOAD_START=$(cat /proc/loadavg)
ensure_export "$ROWS"
cat "$DATA_DIR/chat_$ROWS.csv" >/dev/null
for round in $(seq 1 "$REPEATS"); do
  for format in $FORMATS; do
    for threads in 1 2 $OVERSUB; do one threads "$ROWS" "$format" "$threads" "$round"; done
  done
done
for rows in $SWEEP_SIZES; do
  ensure_export "$rows" || continue
  reps=$SWEEP_REPEATS
  [ "$rows" -ge 10000000 ] && reps=1
  for round in $(seq 1 "$reps"); do one size "$rows" tar.zst "$SWEEP_THREADS" "$round"; done
done
LOAD_END=$(cat /proc/loadavg)

python3 perf/scaling_model.py "$RUNS" "$ROWS" "$PLOTS" "$STAMP" "$LOAD_START" "$LOAD_END" "$(nproc)"
if command -v gnuplot >/dev/null; then
  gnuplot -e "datafile='$PLOTS/throughput_vs_rows_$STAMP.tsv'; outfile='$PLOTS/throughput_vs_rows_$STAMP.png'" \
    perf/plot_throughput_rows.gnuplot
  gnuplot -e "datafile='$PLOTS/throughput_vs_threads_$STAMP.tsv'; outfile='$PLOTS/throughput_vs_threads_$STAMP.png'; cores=$(nproc)" \
    perf/plot_throughput_threads.gnuplot
  echo "plots: $PLOTS/throughput_vs_rows_$STAMP.png $PLOTS/throughput_vs_threads_$STAMP.png" >&2
else
  echo "scaling_model: gnuplot not installed (TIXPORT_WITH_PERF=1 bash scripts/install-deps.sh): no PNGs" >&2
fi
