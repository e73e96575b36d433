#!/usr/bin/env bash
# File: perf/instructions.sh
#
# Instructions executed by a whole `tixport run`, before/after: each binary runs once under
# `valgrind --tool=callgrind` (one thread, `.tar`, a generated export of ROWS rows), and the
# totals and the functions with the most instructions are printed side by side. Unlike wall
# or CPU time, the counts do not move with the load of a shared machine, so a change of 1-2%
# is visible; they do not see cache misses, page faults or the kernel (use ab_compare.sh too).
# Both archives must be byte-identical.
#
#   bash perf/instructions.sh OLD_BINARY NEW_BINARY
#   ROWS=50000 TOP=15 bash perf/instructions.sh /tmp/tixport-before build/tixport
#
# Variables: ROWS (120000), SEED (7), TOP (12), DATA_DIR (perf/data).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: perf/instructions.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
A=$1 B=$2
ROWS=${ROWS:-120000} SEED=${SEED:-7} TOP=${TOP:-12} DATA_DIR=${DATA_DIR:-perf/data}
command -v valgrind >/dev/null || { echo "instructions: valgrind is not installed" >&2; exit 2; }
for bin in "$A" "$B"; do [ -x "$bin" ] || { echo "instructions: no binary $bin" >&2; exit 2; }; done
mkdir -p "$DATA_DIR"
csv=$DATA_DIR/instr_${ROWS}_$SEED.csv users=$DATA_DIR/instr_users_${ROWS}_$SEED.csv
[ -f "$csv" ] || "$B" generate -q --rows "$ROWS" --seed "$SEED" --output "$csv" --users-output "$users"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for side in A B; do
  bin=$A; [ "$side" = B ] && bin=$B
  valgrind --tool=callgrind --callgrind-out-file="$work/$side.out" "$bin" run --no-progress -q --threads 1 \
    --input "$csv" --users-file "$users" --output "$work/$side.tar" 2>"$work/$side.log" >/dev/null
  callgrind_annotate "$work/$side.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}' \
    >"$work/$side.total"
  # Self instructions per function, "count<TAB>name" (names shortened to what precedes "(").
  callgrind_annotate "$work/$side.out" 2>/dev/null |
    awk -v top="$TOP" '/^ *[0-9,]+ \(/ && !/PROGRAM TOTALS/ {
      count = $1; gsub(",", "", count); name = $0; sub(/^[^:]*:/, "", name); gsub(/\(anonymous namespace\)/, "{anon}", name); sub(/\(.*/, "", name)
      print count "\t" name }' >"$work/$side.functions"
done
cmp -s "$work/A.tar" "$work/B.tar" || { echo "instructions: the two archives differ" >&2; exit 1; }
a=$(cat "$work/A.total") b=$(cat "$work/B.total")
echo "| $ROWS rows, 1 thread, .tar | A | B | B/A |"
echo "|---|---:|---:|---:|"
awk -v a="$a" -v b="$b" 'BEGIN { printf "| **all instructions** | %d | %d | %.3f |\n", a, b, b / a }'
# The TOP heaviest functions of B, with A's count of the same name.
head -n "$TOP" "$work/B.functions" | while IFS=$'\t' read -r count name; do
  old=$(awk -F'\t' -v n="$name" '$2 == n { s += $1 } END { print s + 0 }' "$work/A.functions")
  awk -v a="$old" -v b="$count" -v n="$name" \
    'BEGIN { r = a > 0 ? sprintf("%.2f", b / a) : "new"; printf "| `%s` | %d | %d | %s |\n", n, a, b, r }'
done
