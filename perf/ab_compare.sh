#!/usr/bin/env bash
# File: perf/ab_compare.sh
#
# Before/after comparison of two tixport binaries on the same input, in one run
# on one machine: the runs alternate A, B, A, B, ... so that drifting load hits
# both alike, and the medians of wall time, CPU time, peak RSS and each stage's
# time (from --report) are printed as a Markdown table, with the ratio B/A.
#
#   bash perf/ab_compare.sh OLD_BINARY NEW_BINARY CSV USERS_CSV [FORMAT] [RUNS]
#   e.g. bash perf/ab_compare.sh /tmp/tixport-before build/tixport \
#          perf/data/chat_2500000.csv perf/data/users_2500000.csv tar.zst 5
#
# Also runs `zstd -3 -T0` on the uncompressed .tar of B's output (the issue's floor) and
# reports it beside. Outputs are compared byte for byte: A and B must agree
# (pass ALLOW_DIFF=1 when the change is meant to alter the bytes). On a busy machine,
# run it inside a higher-priority autogroup:
#   setsid bash -c 'echo -10 > /proc/$$/autogroup; bash perf/ab_compare.sh ...'
set -euo pipefail
export LC_ALL=C
[ $# -ge 4 ] || { sed -n '2,18p' "$0"; exit 2; }
A=$1 B=$2 CSV=$3 USERS=$4 FORMAT=${5:-tar.zst} RUNS=${6:-5}
for f in "$A" "$B"; do [ -x "$f" ] || { echo "ab_compare: no binary $f" >&2; exit 2; }; done
WORK=$(mktemp -d /tmp/tixport-ab.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# One run: prints "wall cpu rss_kib parse index_wait resolve write".
measure() {
  local bin=$1 out=$2
  local t0 t1
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%U %S %M' -o "$WORK/time" "$bin" run --no-progress --input "$CSV" --users-file "$USERS" \
    --output "$out" --report "$WORK/report.json" 2>/dev/null
  t1=$EPOCHREALTIME
  read -r user sys rss <"$WORK/time"
  python3 - "$WORK/report.json" "$t0" "$t1" "$user" "$sys" "$rss" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["stages"]
wall = float(sys.argv[3]) - float(sys.argv[2])
cpu = float(sys.argv[4]) + float(sys.argv[5])
print(f"{wall:.4f} {cpu:.2f} {sys.argv[6]} {s['parse_seconds']:.4f} {s['index_wait_seconds']:.4f} "
      f"{s['resolve_seconds']:.4f} {s['write_seconds']:.4f}")
EOF
}

for i in $(seq 1 "$RUNS"); do
  measure "$A" "$WORK/a.$FORMAT" >>"$WORK/a.txt"
  measure "$B" "$WORK/b.$FORMAT" >>"$WORK/b.txt"
  echo "run $i/$RUNS: A $(tail -n1 "$WORK/a.txt") | B $(tail -n1 "$WORK/b.txt")" >&2
done
if ! cmp -s "$WORK/a.$FORMAT" "$WORK/b.$FORMAT"; then
  if [ "${ALLOW_DIFF:-0}" != 1 ]; then echo "ab_compare: A and B wrote different archives" >&2; exit 1; fi
  echo "ab_compare: A and B wrote different archives (ALLOW_DIFF=1)" >&2
fi

# The floor: zstd -3 -T0 of B's archive as an uncompressed tar.
"$B" run --no-progress --input "$CSV" --users-file "$USERS" --output "$WORK/b.tar" 2>/dev/null
floor=()
for i in $(seq 1 "$RUNS"); do
  t0=$EPOCHREALTIME
  zstd -q -3 -T0 -f "$WORK/b.tar" -o "$WORK/floor.zst"
  t1=$EPOCHREALTIME
  floor+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", b-a}')")
done
floor_median=$(printf '%s\n' "${floor[@]}" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}')

median_col() { sort -g -k"$2" "$1" | awk -v c="$2" '{v[NR]=$c} END{print v[int((NR+1)/2)]}'; }
echo "| median of $RUNS, $FORMAT | A | B | B/A |"
echo "|---|---:|---:|---:|"
col=1
for name in "wall s" "CPU s" "peak RSS KiB" "parse s" "index_wait s" "resolve s" "write s"; do
  a=$(median_col "$WORK/a.txt" "$col")
  b=$(median_col "$WORK/b.txt" "$col")
  echo "| $name | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN{ if (a > 0) printf "%.2f", b/a; else print "-" }') |"
  col=$((col + 1))
done
b_wall=$(median_col "$WORK/b.txt" 1)
echo "| \`zstd -3 -T0\` of the .tar (floor) | | $floor_median | B wall / floor: $(awk -v a="$floor_median" -v b="$b_wall" 'BEGIN{printf "%.2f", b/a}') |"
