#!/usr/bin/env bash
# File: perf/cpu_outside_compression.sh
#
# Issue 14, target 1 and 3: how much CPU a run spends outside compression, and how far the
# .tar.zst run is from `zstd -3 -T2` of the same tar. On one generated export (default 1M
# rows), REPEATS rounds, each round in this order so that drifting load hits every
# configuration alike:
#   1. tixport run -> .tar into a regular file on the same disk as the export (the CLI
#      refuses a device such as /dev/null for the archive: it is written to a temporary
#      file and renamed into place, so the tar's copy into the page cache is counted)
#   2. tixport run -> .tar.zst into a regular file
#   3. zstd -3 -T2 of the tar from 1 into a regular file
#   4. dd of the tar from 1 into a regular file with fsync (conv=fsync): the CPU that writing
#      the uncompressed tar costs the .tar run (write() into the page cache), which a
#      .tar.zst run does not spend: the .tar run's CPU is an upper bound
# and prints a Markdown table of medians: CPU outside compression = CPU of 1 minus CPU of 4;
# CPU of 2 minus CPU of 3 as a cross-check; wall of 2 / wall of 3 (target <= 1.5); the load
# average before and after. Raw rows go to $DATA_DIR/cpu_outside_<stamp>.tsv.
#
#   bash perf/cpu_outside_compression.sh                  # 1M rows, 5 rounds
#   ROWS=2500000 REPEATS=3 bash perf/cpu_outside_compression.sh
#
# Variables: TIXPORT (build/tixport), ROWS (1000000), REPEATS (5), THREADS (2: the issue's
# -T2), DATA_DIR (perf/data), SEED (1).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
TIXPORT=${TIXPORT:-build/tixport} ROWS=${ROWS:-1000000} REPEATS=${REPEATS:-5}
THREADS=${THREADS:-2} DATA_DIR=${DATA_DIR:-perf/data} SEED=${SEED:-1}
[ -x "$TIXPORT" ] || { echo "cpu_outside_compression: no binary $TIXPORT" >&2; exit 2; }
command -v zstd >/dev/null || { echo "cpu_outside_compression: zstd not installed" >&2; exit 2; }
mkdir -p "$DATA_DIR"
CSV=$DATA_DIR/chat_$ROWS.csv USERS=$DATA_DIR/users_$ROWS.csv
if [ ! -f "$CSV" ] || [ ! -f "$USERS" ]; then
  "$TIXPORT" generate -q --rows "$ROWS" --seed "$SEED" --output "$CSV" --users-output "$USERS"
fi
WORK=$DATA_DIR/cpu_outside.work
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
TSV=$DATA_DIR/cpu_outside_$STAMP.tsv
load() { cut -d' ' -f1 /proc/loadavg; }

# measure NAME CMD...: appends "NAME round wall user sys load_before load_after" to $TSV.
measure() {
  local name=$1; shift
  local before t0 t1 user sys
  before=$(load)
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%U %S' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" ||
    { cat "$WORK/stderr" >&2; echo "cpu_outside_compression: $name failed" >&2; exit 1; }
  t1=$EPOCHREALTIME
  read -r user sys <"$WORK/time"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", b-a}')" "$user" "$sys" "$before" "$(load)" >>"$TSV"
}
RUN=("$TIXPORT" run --no-progress --input "$CSV" --users-file "$USERS" --threads "$THREADS" --output)

# Before each command, the same for all four: (1) its output from the round before is deleted
# and `sync` flushes what earlier commands left dirty, or the page cache's eviction of 306 MB
# and the write-back of the last command's bytes land in whichever command runs next (session
# 13 saw a .tar run's system time vary from 0.30 to 1.37 s without this); (2) its input is
# read into the page cache: some hosts (this one in session 13: `fincore` saw 10-15% of a
# 345 MiB export leave the cache within 30 s, with 23 GB free) evict it between runs, and the
# kernel's re-read would count as the command's CPU. (So the .tar run does not pay for
# replacing an archive: its figures are not comparable with those taken before 3cabe7a.)
prepare() {
  local output=$1; shift
  rm -f "$output"
  sync -f "$WORK"  # the one file system the outputs are on, not every one a shared host has
  cat "$@" >/dev/null
}
printf 'config\tround\twall_s\tuser_s\tsys_s\tload_before\tload_after\n' >"$TSV"
load_start=$(cat /proc/loadavg)
for round in $(seq 1 "$REPEATS"); do
  prepare "$WORK/out.tar" "$CSV" "$USERS"
  measure tar_file "${RUN[@]}" "$WORK/out.tar"
  prepare "$WORK/out.tar.zst" "$CSV" "$USERS"
  measure tar_zst "${RUN[@]}" "$WORK/out.tar.zst"
  prepare "$WORK/zstd.tar.zst" "$WORK/out.tar"
  measure zstd_T2 zstd -q -3 "-T$THREADS" -f "$WORK/out.tar" -o "$WORK/zstd.tar.zst"
  prepare "$WORK/copy.tar" "$WORK/out.tar"
  measure dd_write dd if="$WORK/out.tar" of="$WORK/copy.tar" bs=1M conv=fsync status=none
  echo "round $round/$REPEATS: $(tail -n +2 "$TSV" | awk -F'\t' -v r="$round" '$2==r {printf "%s %.2fs/%.2fcpu  ", $1, $3, $4+$5}')" >&2
done
load_end=$(cat /proc/loadavg)
tar_bytes=$(stat -c %s "$WORK/out.tar")

# Medians per configuration, then the derived figures.
python3 - "$TSV" "$ROWS" "$tar_bytes" "$THREADS" "$load_start" "$load_end" "$REPEATS" <<'EOF'
import csv, statistics, sys
tsv, rows, tar_bytes, threads, load_start, load_end, repeats = sys.argv[1:]
rows = int(rows)
by = {}
for r in csv.DictReader(open(tsv), delimiter="\t"):
    d = by.setdefault(r["config"], {"wall": [], "cpu": [], "lb": [], "la": []})
    d["wall"].append(float(r["wall_s"]))
    d["cpu"].append(float(r["user_s"]) + float(r["sys_s"]))
    d["lb"].append(float(r["load_before"]))
    d["la"].append(float(r["load_after"]))
med = {k: {m: statistics.median(v[m]) for m in ("wall", "cpu")} for k, v in by.items()}
names = {
    "tar_file": f"tixport .tar -> file, --threads {threads}",
    "tar_zst": f"tixport .tar.zst -> file, --threads {threads}",
    "zstd_T2": f"zstd -3 -T{threads} of that .tar -> file",
    "dd_write": "dd of that .tar -> file (conv=fsync): the cost of writing the tar",
}
print(f"| {rows} rows, median of {repeats} | wall s | CPU s (user+sys) | CPU s per 1M rows | load avg (1 min) before..after, range |")
print("|---|---:|---:|---:|---|")
for k in ("tar_file", "tar_zst", "zstd_T2", "dd_write"):
    if k not in med:
        continue
    m = med[k]
    lo, hi = min(by[k]["lb"] + by[k]["la"]), max(by[k]["lb"] + by[k]["la"])
    print(f"| {names[k]} | {m['wall']:.3f} | {m['cpu']:.2f} | {m['cpu'] * 1e6 / rows:.2f} | {lo:.2f}..{hi:.2f} |")
outside = med["tar_file"]["cpu"] - med["dd_write"]["cpu"]
cross = med["tar_zst"]["cpu"] - med["zstd_T2"]["cpu"]
ratio = med["tar_zst"]["wall"] / med["zstd_T2"]["wall"]
print()
print(f"- CPU outside compression, the .tar run minus writing its {int(tar_bytes) / 1e6:.0f} MB tar: "
      f"{med['tar_file']['cpu']:.2f} - {med['dd_write']['cpu']:.2f} = "
      f"**{outside:.2f} s, {outside * 1e6 / rows:.2f} s per 1M rows** (target <= 0.55); "
      f"the .tar run itself: {med['tar_file']['cpu'] * 1e6 / rows:.2f} s per 1M rows")
print(f"- cross-check, CPU(.tar.zst run) - CPU(zstd -3 -T{threads}): {cross:.2f} s "
      f"({cross * 1e6 / rows:.2f} s per 1M rows)")
print(f"- wall, .tar.zst run / zstd -3 -T{threads} of the same tar: "
      f"{med['tar_zst']['wall']:.3f} / {med['zstd_T2']['wall']:.3f} = **{ratio:.2f}x** (target <= 1.5)")
print(f"- /proc/loadavg at the start: {load_start}; at the end: {load_end}")
print(f"- raw rows: {tsv}")
EOF
