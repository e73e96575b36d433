#!/usr/bin/env bash
# File: perf/memory_per_comment.sh
#
# Issue 14, target 2: anonymous peak memory per unique comment. For each size in SIZES,
# runs `tixport run ... --output out.tar.zst --report r.json` under perf/proc_sampler.py
# (RssAnon / RssFile of /proc/PID/status polled every 10 ms; proc_sampler.py says why
# RssAnon and not VmHWM) and prints a Markdown table: peak RSS (VmHWM, anonymous + the
# mapped export), peak RssAnon, the report's `comments` (unique comments written), and
# bytes per unique comment. The 27.7M-row export is ~10 GB: a size whose export is missing
# is generated, and skipped with a note when the disk holding DATA_DIR has less than
# MIN_FREE_GB free. Timelines go to $DATA_DIR/memory_<stamp>/ (for perf/plots).
#
#   bash perf/memory_per_comment.sh                        # 2.5M and 27.7M rows
#   SIZES=2500000 REPEATS=3 bash perf/memory_per_comment.sh
#
# Variables: TIXPORT (build/tixport), SIZES ("2500000 27700000"), REPEATS (1), THREADS
# (nproc), DATA_DIR (perf/data), SEED (1), MIN_FREE_GB (25), FORMAT (tar.zst).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
TIXPORT=${TIXPORT:-build/tixport} SIZES=${SIZES:-2500000 27700000} REPEATS=${REPEATS:-1}
THREADS=${THREADS:-$(nproc)} DATA_DIR=${DATA_DIR:-perf/data} SEED=${SEED:-1}
MIN_FREE_GB=${MIN_FREE_GB:-25} FORMAT=${FORMAT:-tar.zst}
[ -x "$TIXPORT" ] || { echo "memory_per_comment: no binary $TIXPORT" >&2; exit 2; }
mkdir -p "$DATA_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$DATA_DIR/memory_$STAMP
mkdir -p "$OUT"
free_gb() { df -B1G --output=avail "$DATA_DIR" | tail -n 1 | tr -d ' '; }

echo "| rows | export MB | unique comments | peak RSS MiB (VmHWM) | peak RssAnon MiB | peak RssFile MiB | **anon B / unique comment** | RSS B / unique comment | CPU s | wall s | load avg before..after |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for rows in $SIZES; do
  csv=$DATA_DIR/chat_$rows.csv users=$DATA_DIR/users_$rows.csv
  if [ ! -f "$csv" ] || [ ! -f "$users" ]; then
    if [ "$(free_gb)" -lt "$MIN_FREE_GB" ]; then
      echo "| $rows | skipped: $(free_gb) GB free on $DATA_DIR, less than MIN_FREE_GB=$MIN_FREE_GB | | | | | | | | | |"
      continue
    fi
    "$TIXPORT" generate -q --rows "$rows" --seed "$SEED" --output "$csv" --users-output "$users"
  fi
  export_mb=$(( $(stat -c %s "$csv") / 1000000 ))
  for r in $(seq 1 "$REPEATS"); do
    before=$(cut -d' ' -f1 /proc/loadavg)
    python3 perf/proc_sampler.py --timeline "$OUT/timeline_${rows}_$r.tsv" --log "$OUT/run_${rows}_$r.log" -- \
      "$TIXPORT" run --no-progress --input "$csv" --users-file "$users" --threads "$THREADS" \
      --output "$OUT/out.$FORMAT" --report "$OUT/report_${rows}_$r.json" >"$OUT/sample_${rows}_$r.json"
    after=$(cut -d' ' -f1 /proc/loadavg)
    rm -f "$OUT/out.$FORMAT"
    python3 - "$OUT/sample_${rows}_$r.json" "$OUT/report_${rows}_$r.json" "$rows" "$export_mb" "$before" "$after" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
rep = json.load(open(sys.argv[2]))
rows, mb, before, after = sys.argv[3:]
c = rep["comments"]
kib = 1024
print(f"| {rows} | {mb} | {c} | {s['max_rss_kib'] / 1024:.0f} | {s['peak_rss_anon_kib'] / 1024:.0f} | "
      f"{s['peak_rss_file_kib'] / 1024:.0f} | **{s['peak_rss_anon_kib'] * kib / c:.1f}** | "
      f"{s['max_rss_kib'] * kib / c:.1f} | {s['cpu_s']:.2f} | {s['wall_s']:.2f} | {before}..{after} |")
EOF
  done
done
echo
echo "Timelines, reports and sampler output: $OUT"
