#!/usr/bin/env bash
# A drill's restore against the same restore done by hand, on the shared CRM fixture,
# alternating in one run so both see the same machine:
#   planrun: `planrun drill` of a plan whose drill restores the database into a scratch
#            database and the media into a scratch folder, from a local storage; its time is
#            the report's restore time (every artifact's sha256 checked first, then restored),
#            and the whole process's wall clock (with the drop and removal after it);
#   by hand: `createdb`, `zstd -dc db.pgdump.zst | pg_restore -d`, then
#            `zstd -dc media.tar.zst | tar -x` of the same artifacts, no hashing.
#
#   bench/drill.sh small|large [REPS]        (default REPS=3)
#
# Needs the fixture (../shared/bench/fixture.sh create SIZE); the set is written once by
# `planrun execute` before the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
# A worktree sits one level deeper than the main checkout.
[ -d "$SHARED" ] || SHARED=$ROOT/../../shared/bench
size=${1:?usage: bench/drill.sh small|large [REPS]}
reps=${2:-3}
source "$SHARED/lib.sh"
fixture_env "$size"
pg_running || "$SHARED/fixture.sh" start "$size"
command -v zstd >/dev/null || { echo "zstd is needed for the baseline" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is needed to read the report" >&2; exit 2; }

cargo build --release --quiet
BIN=$ROOT/target/release/planrun
OUT=$(mktemp -d /var/tmp/planrun-bench-drill.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
cat > "$OUT/plan.yaml" <<EOF
version: 1
name: bench-drill
sources:
  db: { postgres: { database: crm, host: "$PGHOST", port: $PGPORT, user: "$PGUSER", count_rows: [auth_user, customers_customer, sales_sale] } }
  media: { directory: { path: "$FX/app/media" } }
storage:
  local: { local: { path: "$OUT/backups" } }
steps:
  - { id: db, backup: db }
  - { id: media, backup: media }
drill:
  scratch_dir: $OUT/scratch
  restore:
    db: { database: "planrun_drill_{{run.id}}" }
    media: { path: media }
EOF
chmod 600 "$OUT/plan.yaml"
"$BIN" execute "$OUT/plan.yaml" --state-dir "$OUT/state" > /dev/null
SET=$(ls "$OUT/backups/bench-drill")
DUMP=$OUT/backups/bench-drill/$SET/db.pgdump.zst
MEDIA=$OUT/backups/bench-drill/$SET/media.tar.zst
[ -f "$DUMP" ] && [ -f "$MEDIA" ] || { echo "the set has no db.pgdump.zst or media.tar.zst" >&2; exit 2; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
: > "$OUT/hand"; : > "$OUT/restore"; : > "$OUT/wall"
for i in $(seq "$reps"); do
  sync
  t0=$(now)
  createdb bench_hand
  zstd -dc "$DUMP" | pg_restore --exit-on-error --single-transaction -d bench_hand
  mkdir -p "$OUT/hand-media"
  zstd -dc "$MEDIA" | tar -x -C "$OUT/hand-media"
  t1=$(now)
  echo "$t1 - $t0" | bc >> "$OUT/hand"
  dropdb bench_hand; rm -rf "$OUT/hand-media"; sync

  t0=$(now)
  "$BIN" drill "$OUT/plan.yaml" --state-dir "$OUT/state" --json > "$OUT/report.json"
  t1=$(now)
  echo "$t1 - $t0" | bc >> "$OUT/wall"
  jq '.restore.measured_ms / 1000' "$OUT/report.json" >> "$OUT/restore"
  [ "$(jq -r .result "$OUT/report.json")" = passed ] || { echo "the drill did not pass" >&2; jq . "$OUT/report.json" >&2; exit 1; }
done
hand=$(median < "$OUT/hand"); restore=$(median < "$OUT/restore"); wall=$(median < "$OUT/wall")
printf 'size %s, %s rounds (medians)\n' "$size" "$reps"
printf '  by hand (createdb, zstd -dc | pg_restore, zstd -dc | tar -x): %.2f s\n' "$hand"
printf '  planrun drill, restore with sha256 checks:                  %.2f s  (%.2fx)\n' "$restore" "$(echo "$restore / $hand" | bc -l)"
printf '  planrun drill, whole process:                               %.2f s  (%.2fx)\n' "$wall" "$(echo "$wall / $hand" | bc -l)"
