#!/usr/bin/env bash
# Reruns (SPEC 4.3): a refreshed export that appends 1% new rows to an N-row export,
# migrated as a delta (`run --since`) and as a full run of the same refreshed export,
# alternating, best of REPEATS each; also the full-compare delta path and the ledger's own
# load/save cost (its stage time). Prints a Markdown table for perf/RESULTS.md.
#
#   bash perf/rerun_perf.sh                       # 1M rows + 1% (10,000 rows)
#   ROWS=2500000 APPEND_PERCENT=1 bash perf/rerun_perf.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-1000000}"
APPEND_PERCENT="${APPEND_PERCENT:-1}"
REPEATS="${REPEATS:-3}"
FORMAT="${FORMAT:-tar.zst}"
DATA="${DATA:-perf/data}"
BIN="${BIN:-build/tixport}"
mkdir -p "$DATA"
base="$DATA/rerun_base_$ROWS.csv"
users="$DATA/rerun_users_$ROWS.csv"
refresh="$DATA/rerun_refresh_$ROWS.csv"
ledger="$DATA/rerun_$ROWS.ledger"
export SOURCE_DATE_EPOCH=1

if [ ! -f "$base" ]; then "$BIN" generate --rows "$ROWS" --seed 1 --output "$base" --users-output "$users"; fi
"$BIN" generate --append-to "$base" --rows $((ROWS * APPEND_PERCENT / 100)) --seed 2 --output "$refresh"
"$BIN" run --no-progress --input "$base" --users-file "$users" --output "$DATA/rerun_base.$FORMAT" \
  --ledger "$ledger" --report "$DATA/rerun_base.json" 2>/dev/null

# wall seconds of one command (GNU time), its stderr kept in $DATA/last.err
wall() { /usr/bin/time -f '%e %M' -o "$DATA/time.out" "$@" 2>"$DATA/last.err" >/dev/null; cat "$DATA/time.out"; }
best() { sort -n | head -n 1; }

full=() ; delta=() ; compare=() ; plain=() ; ledgered=()
for i in $(seq "$REPEATS"); do
  # The ledger's own cost on a first run: the same export without and with --ledger.
  plain+=("$(wall "$BIN" run --no-progress --input "$base" --users-file "$users" --output "$DATA/rerun_plain.$FORMAT")")
  ledgered+=("$(wall "$BIN" run --no-progress --input "$base" --users-file "$users" --output "$DATA/rerun_led.$FORMAT" \
    --ledger "$DATA/rerun_led.ledger" --report "$DATA/rerun_led.json")")
  full+=("$(wall "$BIN" run --no-progress --input "$refresh" --users-file "$users" --output "$DATA/rerun_full.$FORMAT")")
  delta+=("$(wall "$BIN" run --no-progress --input "$refresh" --users-file "$users" --output "$DATA/rerun_delta.$FORMAT" \
    --since "$ledger" --ledger "$DATA/rerun_next.ledger" --report "$DATA/rerun_delta.json")")
  compare+=("$(wall "$BIN" run --no-progress --input "$refresh" --users-file "$users" --output "$DATA/rerun_cmp.$FORMAT" \
    --since "$ledger" --ledger "$DATA/rerun_cmp.ledger" --full-compare)")
done
cmp "$DATA/rerun_delta.$FORMAT" "$DATA/rerun_cmp.$FORMAT"
cmp "$DATA/rerun_next.ledger" "$DATA/rerun_cmp.ledger"

f=$(printf '%s\n' "${full[@]}" | awk '{print $1}' | best)
d=$(printf '%s\n' "${delta[@]}" | awk '{print $1}' | best)
c=$(printf '%s\n' "${compare[@]}" | awk '{print $1}' | best)
ledger_bytes=$(stat -c %s "$DATA/rerun_next.ledger")
base_ledger_s=$(python3 -c "import json;print(json.load(open('$DATA/rerun_base.json'))['stages'].get('ledger_seconds',0))")
base_total_s=$(python3 -c "import json;print(json.load(open('$DATA/rerun_base.json'))['seconds'])")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| $ROWS rows + $APPEND_PERCENT% appended, .$FORMAT, best of $REPEATS | wall s | vs full |"
echo "|---|---:|---:|"
echo "| full run of the refreshed export | $f | 1.00 |"
echo "| delta, appended path (\`--since\`) | $d | $(python3 -c "print(f'{$d/$f:.3f}')") |"
echo "| delta, full compare (\`--since --full-compare\`) | $c | $(python3 -c "print(f'{$c/$f:.3f}')") |"
p=$(printf '%s\n' "${plain[@]}" | awk '{print $1}' | best)
l=$(printf '%s\n' "${ledgered[@]}" | awk '{print $1}' | best)
echo
echo "| first run of the $ROWS-row export, best of $REPEATS | wall s | vs without |"
echo "|---|---:|---:|"
echo "| without \`--ledger\` | $p | 1.00 |"
echo "| with \`--ledger\` (fingerprints, export hashes, ledger write) | $l | $(python3 -c "print(f'{$l/$p:.3f}')") |"
python3 -c "import json;r=json.load(open('$DATA/rerun_led.json'));print('with --ledger stages', r['stages'])"
python3 -c "import json;r=json.load(open('$DATA/rerun_delta.json'));print('delta stages', r['stages'])"
echo
echo "runs (wall s, peak RSS KiB): plain ${plain[*]} | with ledger ${ledgered[*]}"
echo "runs (wall s, peak RSS KiB): full ${full[*]} | delta ${delta[*]} | compare ${compare[*]}"
echo "ledger: $ledger_bytes bytes; building+writing it in the first run took ${base_ledger_s} s of ${base_total_s} s"
python3 -c "import json;r=json.load(open('$DATA/rerun_delta.json'));print('delta report:', r['rerun'], 'stages', r['stages'])"
