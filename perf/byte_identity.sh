#!/usr/bin/env bash
# File: perf/byte_identity.sh
#
# Byte identity of two tixport binaries: A (the reference) and B (the candidate) make the
# same runs on the same inputs, and every output is compared. A refactoring or a speed-up
# must not move a byte (SPEC 2.6, 4.2): this is the check to run before committing one,
# beside perf/ab_compare.sh (which times a single configuration).
#
#   bash perf/byte_identity.sh A_BINARY B_BINARY
#   e.g. cp build/tixport /tmp/tixport-before; (rebuild); bash perf/byte_identity.sh /tmp/tixport-before build/tixport
#
# Inputs, generated once with A's `generate` (fixed seeds) into $WORK/data and reused while
# the recipe below is unchanged: a 200k-row export (seed 7) and its index; a refresh that
# appends 20k rows (--append-to, seed 8); a "changed" copy (python csv: 50 comment bodies and
# 5 tickets' created_at edited); users_few.csv (the index's first 40 entries); messy.csv
# (dangling authors / requesters, orphan comments, exact and conflicting duplicates, invalid
# ids and timestamps, short / long records, an unterminated quote at the end) and
# messy_base.csv, its first ~60% cut at a record boundary, whose late authors only get a
# user row in the appended part.
# Runs (each with A in $WORK/A and with B in $WORK/B, from the same relative paths, so the
# paths written into reports agree; SOURCE_DATE_EPOCH fixed except in one run, which takes
# the input's mtime): --threads 1 and 2 x .tar / .tar.zst / .tar.gz with --report, --rejects
# and --ledger; --batch-size 37 --pretty --name-style index; a small --chunk-size; --strict;
# dry runs (one with --rejects -); users_few and messy runs; reruns: --since on the appended
# refresh (appended path, and --full-compare), on the changed copy (full-compare path), a
# third run in the lineage, --since and --ledger naming one file, messy_base -> messy.
# Compared: archives, ledgers, rejects and stdout with cmp; exit codes as text; reports as
# JSON text after removing every key holding "seconds" or "per_second" and "stages".
# Prints one line per output that differs, then `compared N outputs / byte-identical`
# (exit 0) or `compared N outputs / M differ` (exit 1). Stderr of each run is kept beside
# its outputs ($WORK/A/NAME.stderr), not compared. About 70 s on 2 cores (+20 s for new data).
#
# Variables: WORK (/tmp/tixport_identity): data/ (kept), A/ and B/ (emptied on each run).
set -euo pipefail
export LC_ALL=C
[ $# -eq 2 ] || { sed -n '2,33p' "$0"; exit 2; }
for f in "$1" "$2"; do [ -x "$f" ] && [ -f "$f" ] || { echo "byte_identity: no binary $f" >&2; exit 2; }; done
A=$(realpath "$1") B=$(realpath "$2")
WORK=${WORK:-/tmp/tixport_identity}
[ -n "$WORK" ] && [ "$WORK" != / ] || { echo "byte_identity: bad WORK" >&2; exit 2; }
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
DATA=$WORK/data
export SOURCE_DATE_EPOCH=1700000000

# ---- inputs ---------------------------------------------------------------------------
RECIPE="byte_identity data v2: generate 200000 seed 7; append 20000 seed 8; changed 50+5 seed 7; few 40; messy seed 7 cut 0.6"
FILES="chat.csv users.csv refresh.csv changed.csv users_few.csv messy.csv messy_base.csv"
have_data() {
  [ -f "$DATA/recipe" ] && [ "$(cat "$DATA/recipe")" = "$RECIPE" ] || return 1
  local f; for f in $FILES; do [ -f "$DATA/$f" ] || return 1; done
}
if have_data; then
  echo "data: reusing $DATA" >&2
else
  echo "data: generating into $DATA (with A)" >&2
  rm -rf "$DATA"; mkdir -p "$DATA"
  "$A" generate -q --rows 200000 --seed 7 --output "$DATA/chat.csv" --users-output "$DATA/users.csv"
  "$A" generate -q --append-to "$DATA/chat.csv" --rows 20000 --seed 8 --output "$DATA/refresh.csv"
  python3 - "$DATA" <<'EOF'
import csv, random, re, shutil, sys
csv.field_size_limit(sys.maxsize)
d = sys.argv[1]
def read(name):
    with open(f"{d}/{name}", encoding="utf-8", errors="surrogateescape", newline="") as f:
        return list(csv.reader(f))
def write(name, records, mode="w"):
    with open(f"{d}/{name}", mode, encoding="utf-8", errors="surrogateescape", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(records)

records = read("chat.csv")
header, rows = records[0], records[1:]
c = {n.strip().upper(): i for i, n in enumerate(header)}
W = len(header)
good = [i for i, r in enumerate(rows) if len(r) == W]
def id_value(s):  # SPEC 1.1 ids: "00076", " 76.0 " and "76" are one id
    s = s.strip(" \t\r\n")
    s = s[:-2] if s.endswith(".0") else s
    return int(s) if re.fullmatch(r"-?[0-9]+", s) else None
by_conv = {}
for i in good:
    by_conv.setdefault(id_value(rows[i][c["CONVERSATION_ID"]]), []).append(i)
by_conv.pop(None, None)
def conv_rows(conv):
    return by_conv[conv]

# changed.csv: 50 bodies and 5 tickets' created_at edited (full-compare rerun path)
rng = random.Random(7)
ch = [list(r) for r in rows]
for i in rng.sample([i for i in good if ch[i][c["BODY"]].strip()], 50):
    ch[i][c["BODY"]] += " <p>(edited after the first migration)</p>"
convs = sorted(by_conv)
for conv in rng.sample(convs, 5):
    for i in conv_rows(conv):
        ch[i][c["TICKET_CREATED_AT"]] = "2018-06-01T00:00:00Z"
write("changed.csv", [header] + ch)

# users_few.csv: only the index's first 40 entries
users = read("users.csv")
write("users_few.csv", users[:41])

# messy.csv / messy_base.csv
rng = random.Random(7)
m = [list(r) for r in rows]
N = len(m); cut = int(0.6 * N)
gbase = [i for i in good if i < cut]
def setf(i, col, v): m[i][c[col]] = v
# dangling authors: ids that no candidate row ever carries (email blanked)
for i in rng.sample(good, 300):
    setf(i, "AUTHOR_ID", str(9100000000 + rng.randrange(100))); setf(i, "EMAIL", "")
# dangling requesters: every row of 30 conversations
for k, conv in enumerate(rng.sample(convs, 30)):
    for i in conv_rows(conv): setf(i, "TICKET_REQUESTER_ID", str(9200000000 + k))
# orphans (a): 20 conversations without one valid ticket row
for conv in rng.sample(convs, 20):
    for i in conv_rows(conv): setf(i, "TICKET_CREATED_AT", "yesterday")
# late authors: only non-candidate rows in the base part ...
for i in rng.sample(gbase, 200):
    setf(i, "AUTHOR_ID", str(9400000000 + rng.randrange(40))); setf(i, "EMAIL", "")
base_convs = sorted({id_value(rows[i][c["CONVERSATION_ID"]]) for i in gbase} - {None})
for k, conv in enumerate(rng.sample(base_convs, 10)):
    for i in conv_rows(conv):
        if i < cut: setf(i, "TICKET_REQUESTER_ID", str(9400000000 + k))
# invalid values (well-formed records)
for col, bad in (("COMMENT_PART_ID", "12ab"), ("AUTHOR_ID", "x7"), ("TICKET_REQUESTER_ID", "1e5"),
                 ("CONVERSATION_ID", "--3"), ("COMMENT_PUBLIC", "maybe"),
                 ("TICKET_CREATED_AT", "2021-02-30T10:00:00Z"), ("COMMENT_CREATED_AT", "2020-01-01 25:61:00")):
    for i in rng.sample(good, 10): setf(i, col, bad)

ins = []  # (position in rows, tiebreak, record): inserted before rows[position]
def add(pos, rec): ins.append((pos, len(ins), rec))
# ... and a candidate row for each of them in the appended part (5 with an index email)
idx_emails = [u[1] for u in users[101:106]]
for k in range(40):
    i = rng.choice([i for i in good[-2000:]])
    r = list(m[i]); r[c["COMMENT_PART_ID"]] = str(9500000000 + k); r[c["AUTHOR_ID"]] = str(9400000000 + k)
    r[c["NAME"]] = f"Late Author {k}"; r[c["EMAIL"]] = idx_emails[k] if k < 5 else f"late.author{k}@example.org"
    add(rng.randrange(cut, N), r)
# orphans (b): new comments of new conversations whose rows have no requester
for k in range(50):
    r = list(m[rng.choice(good)])
    r[c["COMMENT_PART_ID"]] = str(9300000000 + k); r[c["CONVERSATION_ID"]] = str(9310000000 + k % 17)
    r[c["TICKET_REQUESTER_ID"]] = ""
    add(rng.randrange(N), r)
# duplicates: exact, and with another body (the first valid one wins)
for i in rng.sample(good, 300): add(rng.randrange(i + 1, N + 1), list(m[i]))
for i in rng.sample(good, 100):
    r = list(m[i]); r[c["BODY"]] = "<p>a later, conflicting copy</p>"; add(rng.randrange(i + 1, N + 1), r)
# an invalid copy before a valid row never hides it
for i in rng.sample(good, 30):
    r = list(m[i]); r[c["COMMENT_CREATED_AT"]] = "2020-13-45 99:99:99"; add(i, r)
# malformed: a field too many, a field too few
for i in rng.sample(good, 5): add(i, list(m[i]) + ["extra"])
for i in rng.sample(good, 5): add(i, list(m[i])[:-1])

ins.sort()
out, j = [], 0
base_len = None
for p in range(N + 1):
    while j < len(ins) and ins[j][0] == p:
        out.append(ins[j][2]); j += 1
    if p == cut: base_len = len(out)
    if p < N: out.append(m[p])
write("messy_base.csv", [header] + out[:base_len])
shutil.copyfile(f"{d}/messy_base.csv", f"{d}/messy.csv")
write("messy.csv", out[base_len:], mode="a")
with open(f"{d}/messy.csv", "ab") as f:  # the last record: an unterminated quote
    f.write(b'2020-01-01T00:00:00Z,1,9600000000,20000011,true,"unterminated, no closing quote\nmore,text\n')
EOF
  echo "$RECIPE" >"$DATA/recipe"
fi

# ---- runs -----------------------------------------------------------------------------
# r NAME ARGS...: `BIN run --no-progress ARGS` in the side's directory; stdout to NAME.stdout
# (removed when empty), stderr to NAME.stderr, the exit code to NAME.rc.
r() {
  local name=$1; shift
  local rc=0 pre=()
  [ -z "${UNSET_SDE:-}" ] || pre=(env -u SOURCE_DATE_EPOCH)
  "${pre[@]}" "$BIN" run --no-progress "$@" >"$name.stdout" 2>"$name.stderr" || rc=$?
  echo "$rc" >"$name.rc"
  [ -s "$name.stdout" ] || rm -f "$name.stdout"
  RUNS=$((RUNS + 1))
}
# o NAME THREADS FORMAT USERS INPUT EXTRA...: a run writing NAME.FORMAT, its report and rejects.
o() {
  local name=$1 t=$2 fmt=$3 users=$4 input=$5; shift 5
  r "$name" --input "$input" --users-file "$users" --threads "$t" --output "$name.$fmt" \
    --report "$name.report.json" --rejects "$name.rejects.csv" "$@"
}
all_runs() {
  local D=../data t f
  for t in 1 2; do
    for f in tar tar.zst tar.gz; do
      o "full_t${t}_${f//./_}" "$t" "$f" $D/users.csv $D/chat.csv --ledger "full_t${t}_${f//./_}.ledger"
    done
    r "dry_t$t" --input $D/chat.csv --users-file $D/users.csv --threads "$t" --dry-run --report "dry_t$t.report.json"
    o "few_t$t" "$t" tar.zst $D/users_few.csv $D/chat.csv --ledger "few_t$t.ledger"
    o "messy_t$t" "$t" tar.zst $D/users.csv $D/messy.csv --ledger "messy_t$t.ledger"
  done
  r dry_rejects_stdout --input $D/messy.csv --users-file $D/users.csv --dry-run --report dry_rejects_stdout.report.json --rejects -
  o pretty_b37 2 tar $D/users.csv $D/chat.csv --batch-size 37 --pretty --name-style index
  o chunks_64k 2 tar.zst $D/users.csv $D/chat.csv --chunk-size 65536 --zstd-level 1
  o strict 2 tar.gz $D/users.csv $D/messy.csv --strict --gzip-level 1
  o messy_few 2 tar $D/users_few.csv $D/messy.csv --ledger messy_few.ledger
  UNSET_SDE=1 o input_mtime 2 tar $D/users.csv $D/chat.csv
  # reruns (SPEC 4)
  o base 2 tar.zst $D/users.csv $D/chat.csv --ledger L1.ledger
  for t in 1 2; do
    o "appended_t$t" "$t" tar.zst $D/users.csv $D/refresh.csv --since L1.ledger --ledger "L2_t$t.ledger"
    o "changed_t$t" "$t" tar.zst $D/users.csv $D/changed.csv --since L1.ledger --ledger "L3_t$t.ledger"
  done
  o appended_fullcompare 2 tar $D/users.csv $D/refresh.csv --since L1.ledger --full-compare --ledger L2_full.ledger
  o third 2 tar $D/users.csv $D/changed.csv --since L2_t2.ledger --ledger L4.ledger
  cp L1.ledger same.ledger
  o same_file 2 tar $D/users.csv $D/refresh.csv --since same.ledger --ledger same.ledger
  o messy_base 2 tar.zst $D/users.csv $D/messy_base.csv --ledger ML1.ledger
  for t in 1 2; do
    o "messy_since_t$t" "$t" tar.zst $D/users.csv $D/messy.csv --since ML1.ledger --ledger "ML2_t$t.ledger"
  done
}
for side in A B; do
  rm -rf "${WORK:?}/$side"; mkdir -p "$WORK/$side"
  BIN=${!side} RUNS=0 t0=${EPOCHREALTIME/./}
  (cd "$WORK/$side" && all_runs && echo "$RUNS" >.runs)
  t1=${EPOCHREALTIME/./}
  awk -v s="$side" -v n="$(cat "$WORK/$side/.runs")" -v a="$t0" -v b="$t1" -v bin="$BIN" \
    'BEGIN { printf "%s: %d runs in %.1f s (%s)\n", s, n, (b - a) / 1e6, bin }' >&2
  rm -f "$WORK/$side/.runs"
done

# ---- compare --------------------------------------------------------------------------
# Reports: normalized into $WORK/norm/{A,B}/ (timing keys and "stages" removed, numbers kept
# as written), then compared as text like the rest.
rm -rf "${WORK:?}/norm"
python3 - "$WORK" <<'EOF'
import json, os, sys
w = sys.argv[1]
class Num(str): pass
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items()
                if k != "stages" and "seconds" not in k and "per_second" not in k}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
def dump(v):  # json.dumps, but numbers exactly as the binary wrote them
    if isinstance(v, Num): return str(v)
    if isinstance(v, dict): return "{" + ",".join(json.dumps(k) + ":" + dump(x) for k, x in v.items()) + "}"
    if isinstance(v, list): return "[" + ",".join(dump(x) for x in v) + "]"
    return json.dumps(v)
for side in "AB":
    for dirpath, _, files in os.walk(f"{w}/{side}"):
        for f in files:
            if not f.endswith(".json"): continue
            src = os.path.join(dirpath, f)
            dst = os.path.join(f"{w}/norm/{side}", os.path.relpath(src, f"{w}/{side}"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            raw = open(src, "rb").read()
            try:
                text = dump(strip(json.loads(raw, parse_float=Num, parse_int=Num))) + "\n"
            except ValueError as e:
                text = f"not JSON ({e})\n" + raw.decode("utf-8", "replace")
            open(dst, "w").write(text)
EOF
# The keys whose normalized values differ, for a report's mismatch line.
report_keys() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
def load(p):
    try: return json.loads(open(p).read())
    except ValueError: return None
a, b = load(sys.argv[1]), load(sys.argv[2])
if a is None or b is None: print("not JSON"); sys.exit()
out = []
def walk(x, y, path):
    if isinstance(x, dict) and isinstance(y, dict):
        if list(x) != list(y) and set(x) == set(y): out.append(path + "(key order)")
        for k in list(x) + [k for k in y if k not in x]:
            walk(x.get(k), y.get(k), f"{path}.{k}" if path else k)
    elif x != y: out.append(path or "(whole)")
walk(a, b, "")
print(", ".join(out[:6]) + (f" and {len(out) - 6} more" if len(out) > 6 else ""))
EOF
}
kind() {
  case $1 in
    *.report.json) echo report ;; *.rc) echo exit-code ;; *.rejects.csv) echo rejects ;;
    *.stdout) echo stdout ;; *.tar|*.tar.zst|*.tar.gz) echo archive ;; *.ledger) echo ledger ;; *) echo other ;;
  esac
}
N=0 M=0
declare -A per_kind=()
while IFS= read -r p; do
  k=$(kind "$p")
  N=$((N + 1)) per_kind[$k]=$(( ${per_kind[$k]:-0} + 1 ))
  a=$WORK/A/$p b=$WORK/B/$p
  if [ "$k" = report ]; then a=$WORK/norm/A/$p b=$WORK/norm/B/$p; fi
  if [ ! -e "$a" ] || [ ! -e "$b" ]; then
    M=$((M + 1)); echo "differ: $k $p: only in $([ -e "$a" ] && echo A || echo B)"
  elif ! cmp -s "$a" "$b"; then
    M=$((M + 1))
    case $k in
      report) echo "differ: $k $p: $(report_keys "$a" "$b")" ;;
      exit-code) echo "differ: $k $p: A $(cat "$a"), B $(cat "$b")" ;;
      *) echo "differ: $k $p: $(cmp "$a" "$b" 2>&1 | sed 's|^.* differ: ||')" ;;
    esac
  fi
done < <({ (cd "$WORK/A" && find . -type f ! -name '*.stderr'); (cd "$WORK/B" && find . -type f ! -name '*.stderr'); } \
  | sed 's|^\./||' | sort -u)
summary=
for k in archive ledger rejects report exit-code stdout other; do summary+=" ${per_kind[$k]:-0} $k,"; done
echo "outputs by kind:${summary%,} (stderr kept, not compared)"
if [ "$M" -eq 0 ]; then echo "compared $N outputs / byte-identical"; exit 0; fi
echo "compared $N outputs / $M differ"
exit 1
