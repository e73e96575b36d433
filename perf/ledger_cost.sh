#!/usr/bin/env bash
# The ledger's own cost (issue 10: loading and saving the ledger of an N-row run must cost
# under 5% of that run), before/after in one run: binaries A and B alternate on the same
# export, RUNS times each, and the medians are printed as a Markdown table.
#
#   bash perf/ledger_cost.sh OLD_BINARY NEW_BINARY [ROWS] [RUNS]
#
# Per binary and run: a first run without --ledger (plain), the same with --ledger (its
# `ledger` stage: building, writing and fsyncing the ledger), and a rerun of the export with
# 1% appended rows, `--since` the first run's ledger and `--ledger` a new one (its
# `ledger_load` and `ledger` stages; `ledger_load` runs beside the prefix hash). A and B must
# write the same archive and ledger bytes.
set -euo pipefail
export LC_ALL=C SOURCE_DATE_EPOCH=1
[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 2; }
A=$1 B=$2 ROWS=${3:-2500000} RUNS=${4:-5}
cd "$(dirname "$0")/.."
DATA=${DATA:-perf/data}
mkdir -p "$DATA"
base="$DATA/chat_$ROWS.csv" users="$DATA/users_$ROWS.csv" refresh="$DATA/refresh_$ROWS.csv"
[ -f "$base" ] || "$B" generate --rows "$ROWS" --seed 1 --output "$base" --users-output "$users" -q
[ -f "$refresh" ] || "$B" generate --append-to "$base" --rows $((ROWS / 100)) --seed 2 --output "$refresh" -q
WORK=$(mktemp -d /tmp/tixport-ledger.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$B" run --no-progress -q --input "$base" --users-file "$users" --output "$WORK/base.tar.zst" --ledger "$WORK/base.ledger"

stage() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['stages'].get(sys.argv[2]+'_seconds',float('nan')) if sys.argv[2]!='total' else r['seconds'])" "$@"; }
wall() { local t0=$EPOCHREALTIME; "$@" >/dev/null 2>&1; python3 -c "print(round($EPOCHREALTIME-$t0,3))"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$RUNS"); do
  for who in A B; do
    bin=$A; [ $who = B ] && bin=$B
    p=$(wall "$bin" run --no-progress -q --input "$base" --users-file "$users" --output "$WORK/$who.plain.tar.zst")
    l=$(wall "$bin" run --no-progress -q --input "$base" --users-file "$users" --output "$WORK/$who.led.tar.zst" \
      --ledger "$WORK/$who.first.ledger" --report "$WORK/$who.first.json")
    r=$(wall "$bin" run --no-progress -q --input "$refresh" --users-file "$users" --output "$WORK/$who.delta.tar.zst" \
      --since "$WORK/base.ledger" --ledger "$WORK/$who.next.ledger" --report "$WORK/$who.delta.json")
    echo "$who $p $l $(stage "$WORK/$who.first.json" total) $(stage "$WORK/$who.first.json" ledger) $r \
$(stage "$WORK/$who.delta.json" total) $(stage "$WORK/$who.delta.json" ledger_load) $(stage "$WORK/$who.delta.json" ledger)" >>"$WORK/rows"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for f in led.tar.zst first.ledger delta.tar.zst next.ledger; do cmp "$WORK/A.$f" "$WORK/B.$f"; done
python3 - "$WORK/rows" "$ROWS" "$RUNS" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
def med(who, k):
    v = [float(r[k]) for r in rows if r[0] == who]
    v = [x for x in v if x == x]
    return st.median(v) if v else float('nan')
names = ["plain first run, wall s", "first run --ledger, wall s", "  its report total s",
         "  its ledger stage s", "rerun 1% appended --since --ledger, wall s", "  its report total s",
         "  its ledger_load stage s", "  its ledger stage s"]
print(f"\n| {sys.argv[2]} rows, .tar.zst, median of {sys.argv[3]} | A | B | B/A |")
print("|---|---:|---:|---:|")
for k, n in enumerate(names, start=1):
    a, b = med("A", k), med("B", k)
    print(f"| {n} | {a:.3f} | {b:.3f} | {b/a if a == a and a else float('nan'):.2f} |")
for who in "AB":
    first = med(who, 4) / med(who, 3)
    # Loading and saving the ledger of an N-row run, against that run (the first run's total).
    load = med(who, 7) if med(who, 7) == med(who, 7) else 0.0
    both = (load + med(who, 8)) / med(who, 3)
    print(f"\n{who}: ledger stage share of a first run {first:.1%}; "
          f"rerun's ledger_load + ledger stages against the first run {both:.1%}; "
          f"--ledger wall overhead {med(who, 2) / med(who, 1) - 1:+.1%}")
PY
