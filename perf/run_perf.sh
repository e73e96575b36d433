#!/usr/bin/env bash
# File: perf/run_perf.sh
#
# The end-to-end performance harness. For each export size it:
#   1. generates an export and an index with `tixport generate` (perf/data/, git-ignored);
#   2. measures the first floor: `cat` of the export to /dev/null (warm page cache);
#   3. runs `tixport run` for .tar, .tar.zst and .tar.gz with 1 thread and all
#      threads (REPEATS times each, the median kept), then `tixport verify` on each
#      result, cross-checked against the run's own report;
#   4. measures the other floors: `zstd -3 -T0` and `gzip -6` of the uncompressed .tar output;
#   5. runs the original manual pipeline, perf/baseline_pandas.py, on the same files
#      (once: it takes minutes) and checks its archive with `tixport verify` too;
# then appends a dated section (commit, machine, a table, the tixport/baseline
# ratios) to perf/RESULTS.md and draws rows/s against size (gnuplot) into
# perf/plots/rows_per_second_<stamp>.png, copied to perf/rows_per_second.png.
# Wall time: the shell's clock around each process; CPU time and peak RSS:
# /usr/bin/time -v; per-stage times: tixport's --report JSON. perf/README.md
# explains every column.
#
# On a fresh Debian 12 machine:
#   TIXPORT_WITH_PERF=1 bash scripts/install-deps.sh && bash scripts/build.sh
#   bash perf/run_perf.sh                        # 100k, 1M and 2.5M rows (~15 min quiet, mostly the baseline)
#   SIZES=100000 REPEATS=1 bash perf/run_perf.sh # quick check, about a minute
# Environment knobs (defaults in brackets):
#   SIZES ["100000 1000000 2500000"]  FORMATS ["tar tar.zst tar.gz"]  THREADS ["1 <nproc>"]
#   REPEATS [3]  SEED [1]  BASELINE [1]  BASELINE_MAX_ROWS [none]  REUSE_DATA [0]
#   KEEP_OUTPUTS [0]  TIXPORT [build/tixport]  PYTHON [/usr/bin/python3]  DATA_DIR [perf/data]
#   RESULTS [perf/RESULTS.md]  PLOT [1]  NOTE [none: a line of text for the section]
# Exit status: 0 done; 1 done, but a run failed or an archive of tixport did not
# verify (the table says which); 2 setup error (nothing appended).
set -euo pipefail
export LC_ALL=C  # '.' as the decimal point in EPOCHREALTIME, awk and printf
cd "$(dirname "$0")/.."
ROOT=$PWD

NPROC=$(nproc)
SIZES=${SIZES:-"100000 1000000 2500000"}
FORMATS=${FORMATS:-"tar tar.zst tar.gz"}
if [ "$NPROC" -gt 1 ]; then THREADS=${THREADS:-"1 $NPROC"}; else THREADS=${THREADS:-"1"}; fi
REPEATS=${REPEATS:-3}
SEED=${SEED:-1}
BASELINE=${BASELINE:-1}
BASELINE_MAX_ROWS=${BASELINE_MAX_ROWS:-}
REUSE_DATA=${REUSE_DATA:-0}
KEEP_OUTPUTS=${KEEP_OUTPUTS:-0}
TIXPORT=${TIXPORT:-build/tixport}
PYTHON=${PYTHON:-/usr/bin/python3}
DATA=${DATA_DIR:-perf/data}
RESULTS=${RESULTS:-perf/RESULTS.md}
PLOT=${PLOT:-1}
NOTE=${NOTE:-}
BASELINE_SCRIPT="$ROOT/perf/baseline_pandas.py"
PLOT_SCRIPT="$ROOT/perf/plot.gnuplot"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "run_perf: $*"; exit 2; }

# --- preflight: everything the run needs, checked before minutes are spent ---------------
[ -x "$TIXPORT" ] || die "no tixport binary at $TIXPORT: run 'bash scripts/build.sh' (or set TIXPORT=)"
for cmd in generate run verify; do
  "$TIXPORT" "$cmd" --help >/dev/null 2>&1 || die "$TIXPORT has no working '$cmd' command (tixport $cmd --help failed)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install time (scripts/install-deps.sh installs it)"
for tool in zstd gzip tar awk; do command -v "$tool" >/dev/null || die "$tool missing: run scripts/install-deps.sh"; done
[ -x "$PYTHON" ] || die "$PYTHON missing (reads the JSON reports): TIXPORT_WITH_PERF=1 bash scripts/install-deps.sh"
if [ "$BASELINE" = 1 ]; then
  "$PYTHON" -c 'import pandas' 2>/dev/null ||
    die "$PYTHON cannot import pandas: TIXPORT_WITH_PERF=1 bash scripts/install-deps.sh (python3-pandas), or BASELINE=0"
fi
if [ "$PLOT" = 1 ] && ! command -v gnuplot >/dev/null; then
  log "gnuplot missing (TIXPORT_WITH_PERF=1 bash scripts/install-deps.sh installs gnuplot-nox): no plot"
  PLOT=0
fi
for n in $SIZES; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "SIZES: '$n' is not a row count"; done
for f in $FORMATS; do [[ "$f" =~ ^(tar|tar\.zst|tar\.gz|tgz)$ ]] || die "FORMATS: '$f' is not tar, tar.zst or tar.gz"; done
for t in $THREADS; do [[ "$t" =~ ^[1-9][0-9]*$ ]] || die "THREADS: '$t' is not a thread count"; done
[[ "$REPEATS" =~ ^[1-9][0-9]*$ ]] || die "REPEATS: '$REPEATS' is not a positive count"
[ -z "$BASELINE_MAX_ROWS" ] || [[ "$BASELINE_MAX_ROWS" =~ ^[0-9]+$ ]] || die "BASELINE_MAX_ROWS: not a row count"

# The plot of each run goes beside RESULTS.md, so that the section's relative links hold.
RESULTS_DIR=$(dirname "$RESULTS")
mkdir -p "$DATA" "$RESULTS_DIR/plots"
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/tixport_perf.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
DATE_HUMAN=$(date -u '+%Y-%m-%d %H:%M UTC')
RUN="$DATA/run_$STAMP"       # this run's archives, reports and logs (the inputs stay in $DATA)
mkdir -p "$RUN"
ROWS_TSV="$RUN/results.tsv"  # one line per measurement: the source of the table and the plot
: >"$ROWS_TSV"
FAILURES=0
declare -A BASE_WALL=() BASE_CPU=() BASE_NOTE=() BASE_STEPS=() GEN_NOTE=()

# --- measuring ---------------------------------------------------------------------------
# measure STDOUT STDERR cmd...: runs cmd under /usr/bin/time -v. Sets M_WALL (seconds, from
# the shell's clock, µs resolution), M_CPU (user + system seconds), M_RSS_KB (peak RSS) and
# M_RC (exit status).
measure() {
  local out=$1 err=$2
  shift 2
  local t0 t1
  t0=$EPOCHREALTIME
  set +e
  /usr/bin/time -v -o "$TMPD/time.txt" "$@" >"$out" 2>"$err"
  M_RC=$?
  set -e
  t1=$EPOCHREALTIME
  M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
  M_CPU=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ { s += $2 } END { printf "%.2f", s }' \
    "$TMPD/time.txt")
  M_RSS_KB=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$TMPD/time.txt")
  M_RSS_KB=${M_RSS_KB:-0}
}

# median_of v1 v2 ...: prints the 0-based position of the median value (lower middle when even).
median_of() {
  local i=0 v
  for v in "$@"; do printf '%s %d\n' "$v" "$i"; i=$((i + 1)); done |
    sort -g | awk '{ p[NR] = $2 } END { print p[int((NR + 1) / 2)] }'
}

# jget FILE key.path ...: prints the values, one per line ("?" when missing).
jget() {
  "$PYTHON" - "$@" <<'EOF'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except Exception:
    doc = {}
for path in sys.argv[2:]:
    d = doc
    for k in path.split("."):
        d = d.get(k) if isinstance(d, dict) else None
    print("?" if d is None else d)
EOF
}

div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "?") printf "%.6g", a / b; else print "?" }'; }
file_bytes() { stat -c %s "$1" 2>/dev/null || echo 0; }

# record SIZE TOOL FORMAT THREADS WALL CPU RSS_KB WORK_BYTES OUT_BYTES VERIFY PARSE IDXWAIT RESOLVE WRITE INPROC
# WORK_BYTES is what MB/s is computed on (the export for tixport, cat and the baseline; the .tar
# for the zstd and gzip floors). TSV columns: 1 rows, 2 tool, 3 output, 4 threads, 5 wall,
# 6 cpu, 7 rows/s, 8 MB/s, 9 RSS MiB, 10 output bytes, 11 verify, 12-16 report stages.
record() {
  local size=$1 tool=$2 fmt=$3 thr=$4 wall=$5 cpu=$6 rss=$7 work=$8 outb=$9
  shift 9
  local verify=$1
  shift
  local rps mbs
  rps=$(div "$size" "$wall")
  mbs=$(awk -v b="$work" -v w="$wall" 'BEGIN { printf "%.6g", b / 1e6 / w }')
  if [[ "$verify" == run\ FAIL* ]]; then rps="-" mbs="-" outb="-"; fi  # a failed run has no rate
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$size" "$tool" "$fmt" "$thr" "$wall" "$cpu" "$rps" "$mbs" \
    "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$outb" "$verify" "$@" >>"$ROWS_TSV"
}

# verify_archive ARCHIVE USERS [RUN_REPORT]: runs `tixport verify`. Sets V_RC, V_PROBLEMS (the
# problem counts it lists, "name count, ..."), V_FIRST (its first problem line) and V_CELL, the
# table's text. With RUN_REPORT (tixport's --report of the run that wrote ARCHIVE) it also
# sets V_OK=1 when the archive is valid except exactly the dangling references that run
# reported: SPEC 2.2 writes a chat id missing from the identity map unchanged and counts it,
# and SPEC 3 has verify flag every such id, so both tools must agree on the number.
verify_archive() {
  set +e
  "$TIXPORT" verify "$1" --users-file "$2" >"$TMPD/verify.out" 2>&1
  V_RC=$?
  set -e
  V_PROBLEMS=$(awk '/^[[:space:]]*problems[[:space:]]/ { p = 1; next } /^first problems/ { p = 0 }
    p && NF == 2 && $2 ~ /^[0-9]+$/ { printf "%s%s %s", sep, $1, $2; sep = ", " }' "$TMPD/verify.out")
  V_FIRST=$(awk '/^first problems/ { p = 1; next } p && NF { sub(/^[[:space:]]+/, ""); print; exit }' \
    "$TMPD/verify.out" | cut -c1-200)
  V_OK=0
  if [ "$V_RC" -eq 0 ]; then
    V_OK=1
    V_CELL=ok
    return
  fi
  V_CELL="INVALID ($V_RC): ${V_PROBLEMS:-see log}"
  if [ -n "${3:-}" ] && [ "$V_RC" -eq 1 ]; then
    local da dr only va vr
    local -a d
    mapfile -t d < <(jget "$3" issues.dangling_author_ref.count issues.dangling_requester_ref.count)
    da=${d[0]} dr=${d[1]}
    [ "$da" != "?" ] || da=0
    [ "$dr" != "?" ] || dr=0
    only=$(awk '/^[[:space:]]*problems[[:space:]]/ { p = 1; next } /^first problems/ { p = 0 }
      p && NF == 2 && $1 != "unknown_author_id" && $1 != "unknown_requester_id" { print "no"; exit }' \
      "$TMPD/verify.out")
    va=$(awk '$1 == "unknown_author_id" && NF == 2 { print $2; exit }' "$TMPD/verify.out")
    vr=$(awk '$1 == "unknown_requester_id" && NF == 2 { print $2; exit }' "$TMPD/verify.out")
    if [ -z "$only" ] && [ "${va:-0}" = "$da" ] && [ "${vr:-0}" = "$dr" ]; then
      V_OK=1
      V_CELL="ok but $((da + dr)) dangling refs (= report)"
    fi
  fi
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
threads_label() { if [ "$1" = 1 ]; then echo "1 thread"; else echo "$1 threads"; fi; }

# --- the run -----------------------------------------------------------------------------
log "tixport perf: sizes [$SIZES], formats [$FORMATS], threads [$THREADS], repeats $REPEATS, baseline $BASELINE"
LOAD_START=$(loadavg)
for N in $SIZES; do
  chat="$DATA/chat_$N.csv"
  users="$DATA/users_$N.csv"
  log "== $N rows (load average $(loadavg))"

  # 1. The export and the index.
  if [ "$REUSE_DATA" = 1 ] && [ -s "$chat" ] && [ -s "$users" ]; then
    log "reusing $chat"
    gen="reused from an earlier run"
  else
    measure "$TMPD/gen.out" "$TMPD/gen.err" "$TIXPORT" generate --rows "$N" --output "$chat" \
      --users-output "$users" --seed "$SEED"
    [ "$M_RC" -eq 0 ] || { cat "$TMPD/gen.err" >&2; die "tixport generate --rows $N failed (exit $M_RC)"; }
    gen="generated in $(awk -v w="$M_WALL" 'BEGIN { printf "%.2f", w }') s"
  fi
  in_bytes=$(file_bytes "$chat")
  GEN_NOTE[$N]="$(awk -v b="$in_bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }') export, \
$(($(wc -l <"$users") - 1)) index lines, $gen; load average $(loadavg) before this size"

  # 2. Floor: reading the export. One untimed pass first, so that every measurement
  #    below (tixport and the baseline alike) reads from a warm page cache.
  cat "$chat" >/dev/null
  walls=() cpus=() rsss=()
  for ((r = 0; r < REPEATS; r++)); do
    measure /dev/null "$TMPD/cat.err" cat "$chat"
    walls+=("$M_WALL") cpus+=("$M_CPU") rsss+=("$M_RSS_KB")
  done
  m=$(median_of "${walls[@]}")
  record "$N" "floor: cat" "-" 1 "${walls[$m]}" "${cpus[$m]}" "${rsss[$m]}" "$in_bytes" "-" "-" - - - - -
  log "cat: ${walls[$m]} s"

  # 3. tixport run, every format x threads, then verify.
  tar_out=""
  for fmt in $FORMATS; do
    for t in $THREADS; do
      out="$RUN/out_${N}_t${t}.$fmt"
      walls=() cpus=() rsss=() rcs=()
      for ((r = 0; r < REPEATS; r++)); do
        measure "$TMPD/run.out" "$RUN/run_${N}_${fmt}_t${t}_r$r.log" "$TIXPORT" run --input "$chat" \
          --users-file "$users" --output "$out" --report "$RUN/report_${N}_${fmt}_t${t}_r$r.json" \
          --threads "$t" --no-progress
        walls+=("$M_WALL") cpus+=("$M_CPU") rsss+=("$M_RSS_KB") rcs+=("$M_RC")
        log "tixport run .$fmt, $(threads_label "$t"), repeat $((r + 1))/$REPEATS: $M_WALL s wall, $M_CPU s CPU, exit $M_RC"
      done
      m=$(median_of "${walls[@]}")
      rss_max=$(printf '%s\n' "${rsss[@]}" | sort -n | tail -n 1)
      if [ "${rcs[$m]}" -ne 0 ]; then
        FAILURES=$((FAILURES + 1))
        log "tixport run failed (exit ${rcs[$m]}), see $RUN/run_${N}_${fmt}_t${t}_r$m.log"
        record "$N" tixport ".$fmt" "$t" "${walls[$m]}" "${cpus[$m]}" "$rss_max" "$in_bytes" 0 \
          "run FAIL (${rcs[$m]})" - - - - -
        continue
      fi
      report="$RUN/report_${N}_${fmt}_t${t}_r$m.json"
      verify_archive "$out" "$users" "$report"
      if [ "$V_OK" != 1 ]; then
        FAILURES=$((FAILURES + 1))
        cp "$TMPD/verify.out" "$RUN/verify_${N}_${fmt}_t${t}.log"
        log "tixport verify $out: $V_CELL; first: $V_FIRST"
      fi
      mapfile -t st < <(jget "$report" stages.parse_seconds stages.index_wait_seconds \
        stages.resolve_seconds stages.write_seconds seconds)
      record "$N" tixport ".$fmt" "$t" "${walls[$m]}" "${cpus[$m]}" "$rss_max" "$in_bytes" "$(file_bytes "$out")" \
        "$V_CELL" "${st[@]}"
      if [ "$fmt" = tar ]; then tar_out=$out; fi
    done
  done

  # 4. Floors: compressing the uncompressed output with the standard tools, at tixport's
  #    default levels.
  if [ -z "$tar_out" ]; then
    tar_out="$RUN/out_${N}_floor.tar"
    "$TIXPORT" run --input "$chat" --users-file "$users" --output "$tar_out" --no-progress 2>"$TMPD/run.err" ||
      { cat "$TMPD/run.err" >&2; die "tixport run (the .tar for the floors) failed"; }
  fi
  tar_bytes=$(file_bytes "$tar_out")
  cat "$tar_out" >/dev/null
  for floor in zstd gzip; do
    walls=() cpus=() rsss=()
    for ((r = 0; r < REPEATS; r++)); do
      if [ "$floor" = zstd ]; then
        measure /dev/null "$TMPD/floor.err" zstd -3 -T0 -q -c "$tar_out"
      else
        measure /dev/null "$TMPD/floor.err" gzip -6 -c "$tar_out"
      fi
      walls+=("$M_WALL") cpus+=("$M_CPU") rsss+=("$M_RSS_KB")
    done
    m=$(median_of "${walls[@]}")
    if [ "$floor" = zstd ]; then label="floor: zstd -3 -T0 of .tar" thr=$NPROC; else label="floor: gzip -6 of .tar" thr=1; fi
    record "$N" "$label" "-" "$thr" "${walls[$m]}" "${cpus[$m]}" "${rsss[$m]}" "$tar_bytes" "-" "-" - - - - -
    log "$label: ${walls[$m]} s"
  done

  # 5. The original pandas pipeline on the same files.
  if [ "$BASELINE" = 1 ] && { [ -z "$BASELINE_MAX_ROWS" ] || [ "$N" -le "$BASELINE_MAX_ROWS" ]; }; then
    base_out="$RUN/baseline_$N.tar.gz"
    base_report="$RUN/baseline_$N.json"
    log "pandas baseline on $N rows (slow: about 0.1-0.5 ms a row)"
    measure "$RUN/baseline_$N.log" "$RUN/baseline_$N.err" "$PYTHON" "$BASELINE_SCRIPT" --input "$chat" \
      --users-file "$users" --output "$base_out" --workdir "$RUN/baseline_work_$N" --report "$base_report"
    if [ "$M_RC" -ne 0 ]; then
      FAILURES=$((FAILURES + 1))
      log "baseline failed (exit $M_RC), see $RUN/baseline_$N.err"
      record "$N" "pandas baseline" ".tar.gz" 1 "$M_WALL" "$M_CPU" "$M_RSS_KB" "$in_bytes" 0 "run FAIL ($M_RC)" - - - - -
    else
      BASE_WALL[$N]=$M_WALL
      BASE_CPU[$N]=$M_CPU
      b_wall=$M_WALL b_cpu=$M_CPU b_rss=$M_RSS_KB
      verify_archive "$base_out" "$users"
      b_cell=$V_CELL
      BASE_NOTE[$N]="as written: ${V_PROBLEMS:-exit $V_RC}"
      # The entries are named "./backup_tickets_*.json" (tar -C dir .), which verify rejects
      # before it reads them. For the record, the contents checked under plain names too
      # (information only, untimed).
      repack="$RUN/baseline_repack_$N"
      mkdir -p "$repack/files"
      if tar -xzf "$base_out" -C "$repack/files" &&
        (cd "$repack/files" && find . -maxdepth 1 -name 'backup_tickets_*.json' -printf '%f\n' | sort -V |
          tar -cf ../repacked.tar -T -); then
        verify_archive "$repack/repacked.tar" "$users"
        BASE_NOTE[$N]="${BASE_NOTE[$N]}; contents, re-packed without \"./\": ${V_PROBLEMS:-exit $V_RC}"
        if [ -n "$V_FIRST" ]; then BASE_NOTE[$N]="${BASE_NOTE[$N]}; first: \`$V_FIRST\`"; fi
      fi
      rm -rf "$repack"
      mapfile -t bs < <(jget "$base_report" steps.generate_unique_users steps.vlookup_merge \
        steps.generate_user_json steps.generate_comment_json steps.generate_ticket_json \
        steps.split_into_batch_files steps.build_backup_files steps.tar_gzip counts.batches)
      BASE_STEPS[$N]=$(printf '%.3f | ' "${bs[@]:0:8}" 2>/dev/null; printf '%s |' "${bs[8]}")
      record "$N" "pandas baseline" ".tar.gz" 1 "$b_wall" "$b_cpu" "$b_rss" "$in_bytes" "$(file_bytes "$base_out")" \
        "$b_cell" - - - - -
      log "baseline: $b_wall s wall, $b_cpu s CPU"
    fi
  fi

  if [ "$KEEP_OUTPUTS" != 1 ]; then
    rm -f "$RUN"/out_"$N"_* "$RUN/baseline_$N.tar.gz"
    rm -rf "$RUN/baseline_work_$N"
  fi
done
LOAD_END=$(loadavg)

# --- the results: a dated section appended to RESULTS.md, and the plot -------------------
fmt_num() {  # fmt_num VALUE DECIMALS: "?" and "-" pass through
  case "$1" in "?" | "-" | "") printf '%s' "${1:--}" ;; *) awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }' ;; esac
}
fmt_rate() {  # 1234567 -> 1.23 M
  case "$1" in "?" | "-" | "") printf '%s' "${1:--}" ;;
  *) awk -v v="$1" 'BEGIN { if (v >= 1e6) printf "%.2f M", v / 1e6; else if (v >= 1e3) printf "%.1f k", v / 1e3; else printf "%.0f", v }' ;;
  esac
}
fmt_mb() { case "$1" in "-" | "?" | "") printf '%s' "${1:--}" ;; *) awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }' ;; esac; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.0f×", a / b; else print "-" }'; }

COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BRANCH=$(git -C "$ROOT" rev-parse --abbrev-ref HEAD 2>/dev/null || echo "?")
if [ "$COMMIT" != unknown ] && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  COMMIT="$COMMIT + uncommitted changes"
fi
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
MEM_GIB=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
PANDAS_VERSION=$("$PYTHON" -c 'import pandas; print(pandas.__version__)' 2>/dev/null || echo "not installed")
TOOLS="$(zstd --version 2>/dev/null | head -n 1 | sed 's/^\*\*\* //; s/, by.*//'), gzip $(gzip --version | head -n 1 |
  awk '{ print $NF }'), $("$PYTHON" --version 2>&1), pandas $PANDAS_VERSION"

# The plot: one column per series, rows/s against size; the baseline and the read floor last.
PLOT_TSV="$RESULTS_DIR/plots/rows_per_second_$STAMP.tsv"
PLOT_PNG="$RESULTS_DIR/plots/rows_per_second_$STAMP.png"
MAXT=${THREADS##* }
series=()
for fmt in $FORMATS; do series+=("tixport|.$fmt|$MAXT|tixport .$fmt, $(threads_label "$MAXT")"); done
if [ "$MAXT" != 1 ]; then
  one_fmt=$([[ " $FORMATS " == *" tar.zst "* ]] && echo tar.zst || echo "${FORMATS%% *}")
  series+=("tixport|.$one_fmt|1|tixport .$one_fmt, 1 thread")
fi
series+=("pandas baseline|.tar.gz|1|pandas baseline (.tar.gz)" "floor: cat|-|1|floor: cat of the export")
{
  printf 'rows'
  for s in "${series[@]}"; do printf '\t%s' "${s##*|}"; done
  printf '\n'
  for N in $SIZES; do
    printf '%s' "$N"
    for s in "${series[@]}"; do
      IFS='|' read -r tool fmt thr _ <<<"$s"
      v=$(awk -F'\t' -v n="$N" -v t="$tool" -v f="$fmt" -v th="$thr" \
        '$1 == n && $2 == t && $3 == f && $4 == th && $11 !~ /^run FAIL/ { print $7; exit }' "$ROWS_TSV")
      printf '\t%s' "${v:-?}"
    done
    printf '\n'
  done
} >"$PLOT_TSV"
PLOT_NOTE="(no plot: gnuplot missing or PLOT=0)"
if [ "$PLOT" = 1 ]; then
  if gnuplot -e "datafile='$PLOT_TSV'; outfile='$PLOT_PNG'; ncols=$((${#series[@]} + 1)); subtitle='$DATE_HUMAN, commit ${COMMIT%% *}, $NPROC cores'" \
    "$PLOT_SCRIPT" 2>"$TMPD/gnuplot.err"; then
    cp "$PLOT_PNG" "$RESULTS_DIR/rows_per_second.png"
    PLOT_NOTE="[plots/rows_per_second_$STAMP.png](plots/rows_per_second_$STAMP.png) (data: [tsv](plots/rows_per_second_$STAMP.tsv))"
  else
    log "gnuplot failed: $(cat "$TMPD/gnuplot.err")"
  fi
fi

# The section, built in a temporary file and appended in one write.
SECTION="$TMPD/section.md"
{
  printf '\n## End-to-end run, %s\n\n' "$DATE_HUMAN"
  # shellcheck disable=SC2016  # the backquotes are Markdown
  printf -- '- commit: `%s` (%s); binary: `%s`\n' "$COMMIT" "$BRANCH" "$TIXPORT"
  printf -- '- machine: %s, %s cores (nproc), %s GiB RAM, %s; load average %s at the start, %s at the end\n' \
    "${CPU_MODEL:-unknown CPU}" "$NPROC" "$MEM_GIB" "$(uname -sr)" "$LOAD_START" "$LOAD_END"
  if [ "$(nice)" != 0 ]; then
    printf -- '- run at niceness %s: the wall times include waiting behind other work; compare the CPU columns\n' "$(nice)"
  fi
  if [ -n "$NOTE" ]; then printf -- '- note: %s\n' "$NOTE"; fi
  printf -- '- tools: %s\n' "$TOOLS"
  if [ "$BASELINE" = 1 ]; then base_setting="the baseline once per size${BASELINE_MAX_ROWS:+ up to $BASELINE_MAX_ROWS rows}"
  else base_setting="no baseline (BASELINE=0)"; fi
  printf -- '- settings: sizes %s, seed %s, formats %s, threads %s, %s repeat(s) (median wall kept; peak RSS = max over repeats); %s\n' \
    "$SIZES" "$SEED" "$FORMATS" "$THREADS" "$REPEATS" "$base_setting"
  for N in $SIZES; do printf -- '- %s rows: %s\n' "$N" "${GEN_NOTE[$N]:-}"; done
  printf -- '- plot: %s\n\n' "$PLOT_NOTE"
  printf '| rows | tool | output | threads | wall s | CPU s | rows/s | MB/s | peak RSS MiB | parse s | index wait s | resolve s | write s | in-process s | output MB | verify | baseline ÷ this, wall | baseline ÷ this, CPU |\n'
  printf '|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n'
  while IFS=$'\t' read -r size tool fmt thr wall cpu rps mbs rss outb verify parse idx res wr inproc; do
    sw="-" sc="-"
    if [ -n "${BASE_WALL[$size]:-}" ] && [ "$tool" = tixport ] && [[ "$verify" != run\ FAIL* ]]; then
      sw=$(ratio "${BASE_WALL[$size]}" "$wall")
      sc=$(ratio "${BASE_CPU[$size]}" "$cpu")
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
      "$size" "$tool" "$fmt" "$thr" "$(fmt_num "$wall" 3)" "$(fmt_num "$cpu" 2)" "$(fmt_rate "$rps")" \
      "$(fmt_num "$mbs" 1)" "$(fmt_num "$rss" 0)" "$(fmt_num "$parse" 3)" "$(fmt_num "$idx" 3)" \
      "$(fmt_num "$res" 3)" "$(fmt_num "$wr" 3)" "$(fmt_num "$inproc" 3)" "$(fmt_mb "$outb")" "$verify" "$sw" "$sc"
  done <"$ROWS_TSV"
  if [ "${#BASE_WALL[@]}" -gt 0 ]; then
    printf '\nBaseline steps (wall seconds inside perf/baseline_pandas.py):\n\n'
    printf '| rows | unique users | VLOOKUP merge | user json | comment json | ticket json | split | backup_tickets files | tar+gzip | batches |\n'
    printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    for N in $SIZES; do
      if [ -n "${BASE_STEPS[$N]:-}" ]; then printf '| %s | %s\n' "$N" "${BASE_STEPS[$N]}"; fi
    done
    printf '\ntixport against the baseline (same machine, same run, same files, end to end):\n\n'
    for N in $SIZES; do
      [ -n "${BASE_WALL[$N]:-}" ] || continue
      awk -F'\t' -v n="$N" -v b="${BASE_WALL[$N]}" -v bc="${BASE_CPU[$N]}" -v maxt="$MAXT" '
        $1 == n && $2 == "tixport" && $11 !~ /^run FAIL/ {
          r = b / $5
          c = $3 ", " $4 ($4 == 1 ? " thread" : " threads")
          if (min == "" || r < min) { min = r; minc = c }
          if (max == "" || r > max) { max = r; maxc = c }
          if ($6 > 0 && (cmin == "" || bc / $6 < cmin)) cmin = bc / $6
          if ($3 == ".tar.gz" && $4 == maxt) gz = r
        }
        END {
          if (min == "") { printf "- %s rows: no successful tixport run\n", n; exit }
          printf "- %s rows: the baseline took %.1f s (%.1f s CPU); tixport was %.0f× faster (%s) to %.0f× faster (%s) in wall time", n, b, bc, min, minc, max, maxc
          if (gz != "") printf ", %.0f× with .tar.gz on %s (the format the baseline writes)", gz, (maxt == 1 ? "1 thread" : maxt " threads")
          if (cmin != "") printf "; at least %.0f× less CPU time", cmin
          if (n == 1000000) printf ". **Target ≥ 100× at 1M rows: %s**", (min >= 100 ? "met by every configuration" : (max >= 100 ? "met by " maxc " (not by every configuration)" : "NOT met"))
          printf "\n"
        }' "$ROWS_TSV"
      if [ -n "${BASE_NOTE[$N]:-}" ]; then
        # shellcheck disable=SC2016
        printf -- '  - `tixport verify` on the baseline archive: %s\n' "${BASE_NOTE[$N]}"
      fi
    done
  fi
  if [ "$FAILURES" -gt 0 ]; then
    printf '\n**%s tixport measurement(s) failed or did not verify; see the table and %s.**\n' "$FAILURES" "$RUN"
  fi
} >"$SECTION"

if [ ! -e "$RESULTS" ]; then printf '# Performance results\n' >"$RESULTS"; fi
cat "$SECTION" >>"$RESULTS"
cat "$SECTION"
log "appended to $RESULTS; raw measurements, reports and logs in $RUN"
[ "$FAILURES" -eq 0 ] || { log "$FAILURES measurement(s) failed"; exit 1; }
