#!/usr/bin/env bash
# Installs, builds, generates a sample export and index, and runs the migration
# on it, then verifies the archive. ROWS (default 200000) sets the sample size.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
mkdir -p out
ROWS="${ROWS:-200000}"
build/tixport generate --rows "$ROWS" --output out/chat.csv --users-output out/users.csv --seed 1
# 1. check the export first: counts, and every rejected row in a CSV; nothing else is written
build/tixport run --input out/chat.csv --users-file out/users.csv --dry-run --rejects out/rejects.csv
# 2. migrate, keeping a ledger for later reruns
build/tixport run --input out/chat.csv --users-file out/users.csv --output out/backup_tickets.tar.zst \
  --report out/report.json --ledger out/migration.ledger
# The generated export, like real ones, has chat users who never wrote with an
# email (their references stay dangling, SPEC 2.2): verify lists them and exits 1.
build/tixport verify out/backup_tickets.tar.zst --users-file out/users.csv || [ $? -eq 1 ]
# 3. weeks later: a refreshed export (the old rows + new ones) gives a delta archive
build/tixport generate --append-to out/chat.csv --rows $((ROWS / 50)) --output out/refresh.csv --seed 2
build/tixport run --input out/refresh.csv --users-file out/users.csv --output out/delta_1.tar.zst \
  --since out/migration.ledger --ledger out/migration.ledger
build/tixport verify out/delta_1.tar.zst --users-file out/users.csv --since out/migration.ledger || [ $? -eq 1 ]
echo "archive: out/backup_tickets.tar.zst   report: out/report.json   rejects: out/rejects.csv"
echo "delta:   out/delta_1.tar.zst          ledger: out/migration.ledger"
