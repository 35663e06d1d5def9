#!/usr/bin/env bash
# A level 3 recovery from the off-site copy alone (the local storage gone), on the shared
# fixture: `planrun recover --level 3 --yes` (which falls back to S3, downloads and re-hashes
# every artifact, restores the database beside any live one and extracts the media) against
# the hand-run equivalent of the same artifacts (`aws s3 cp --recursive`, then
# `zstd -dc | pg_restore`, then `zstd -dc | tar -x`), alternating, so both see the same
# machine. Prints the medians and the ratio.
#
#   bench/recover.sh small|large [REPS]        (default large, REPS=3)
#
# Needs the fixture (../shared/bench/fixture.sh create SIZE) and awscli. The S3 server is
# examples/s3_server.rs (s3s-fs on loopback, SigV4), as in bench/copy.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
size=${1:-large}
reps=${2:-3}
source "$SHARED/lib.sh"
fixture_env "$size"
pg_running || "$SHARED/fixture.sh" start "$size"

cargo build --release --quiet --bin planrun --example s3_server
BIN=$ROOT/target/release/planrun
server=$ROOT/target/release/examples/s3_server
OUT=$(mktemp -d "${BENCH_OUT}-recover.XXXXXX")
chmod 755 "$OUT"
server_pid=
target=crm_bench_recover
drop_targets() {
  local db
  for db in $(psqlx -At -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '${target}%'"); do
    psqlx -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)"
  done
}
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2> /dev/null
  drop_targets || true
  rm -rf "$OUT"
}
trap cleanup EXIT

ak=bench-access; sk=bench-secret-key; port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$OUT/s3/bench"
"$server" "$OUT/s3" "$port" "$ak" "$sk" & server_pid=$!
sleep 0.5
export AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_CONFIG_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

cat > "$OUT/plan.yaml" <<EOF
version: 1
name: crm
sources:
  db: { postgres: { database: crm, host: "$PGHOST", port: $PGPORT, user: "$PGUSER" } }
  media: { directory: { path: "$FX/app/media" } }
storage:
  local: { local: { path: "$OUT/backups" } }
  offsite:
    s3: { bucket: bench, prefix: crm/, endpoint: "http://127.0.0.1:$port", path_style: true, allow_http: true }
steps:
  - { id: db, backup: db }
  - { id: media, backup: media }
  - { id: offsite, copy: { to: offsite }, needs: [db, media] }
recovery:
  levels:
    3:
      name: Site disaster
      steps:
        - { id: restore-db, restore: { source: db, database: $target } }
        - { id: restore-media, restore: { source: media, path: "$OUT/restored/media" } }
EOF
chmod 600 "$OUT/plan.yaml"
"$BIN" execute --state-dir "$OUT/nightly-state" "$OUT/plan.yaml" > /dev/null
set_id=$(ls "$OUT/backups/crm")
# The site is lost: only the off-site copy is left.
rm -rf "$OUT/backups"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

run_planrun() {
  drop_targets; rm -rf "$OUT/restored" "$OUT/state"; sync
  local t0
  t0=$(now)
  "$BIN" recover --level 3 "$OUT/plan.yaml" --yes --state-dir "$OUT/state" < /dev/null \
    > "$OUT/planrun.out" 2>&1 || { cat "$OUT/planrun.out" >&2; exit 1; }
  echo "$(elapsed "$t0")" >> "$OUT/planrun.s"
  grep -q "FELL BACK to storage \`offsite\`" "$OUT/planrun.out"
}

run_hand() {
  drop_targets; rm -rf "$OUT/hand"; sync
  local t0
  t0=$(now)
  aws --endpoint-url "http://127.0.0.1:$port" s3 cp --recursive --quiet \
    "s3://bench/crm/crm/$set_id/" "$OUT/hand/"
  psqlx -d postgres -c "CREATE DATABASE $target"
  zstd -dcq "$OUT/hand/db.pgdump.zst" \
    | "$PGBIN/pg_restore" --exit-on-error --single-transaction --no-password --dbname="$target"
  mkdir -p "$OUT/hand/media"
  zstd -dcq "$OUT/hand/media.tar.zst" | tar -x -C "$OUT/hand/media"
  echo "$(elapsed "$t0")" >> "$OUT/hand.s"
}

: > "$OUT/planrun.s"; : > "$OUT/hand.s"
for rep in $(seq 1 "$reps"); do
  if [ $((rep % 2)) = 1 ]; then
    wait_quiet 2>> "$OUT/quiet.log"; run_planrun
    wait_quiet 2>> "$OUT/quiet.log"; run_hand
  else
    wait_quiet 2>> "$OUT/quiet.log"; run_hand
    wait_quiet 2>> "$OUT/quiet.log"; run_planrun
  fi
done
p=$(median < "$OUT/planrun.s"); h=$(median < "$OUT/hand.s")
echo "level 3 recover ($size, $reps reps): planrun $p s (runs: $(paste -sd' ' "$OUT/planrun.s")), hand-run $h s (runs: $(paste -sd' ' "$OUT/hand.s"))"
awk -v p="$p" -v h="$h" 'BEGIN {printf "ratio planrun / hand-run: %.2fx (target <= 1.2x)\n", p / h}'
