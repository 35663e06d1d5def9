#!/usr/bin/env bash
# A whole CRM nightly with planrun (PostgreSQL, media and config into a local storage) on the
# shared fixture, run side by side and alternating with the seed's own script
# (`baseline.sh SIZE seq`) and the hand-built floor (`baseline.sh SIZE fast`), so that all
# three see the same machine. Prints the medians, the ratios and planrun's peak memory.
#
#   bench/nightly.sh small|large [REPS]        (default REPS=3)
#
# BEFORE=/path/to/an/older/planrun adds that binary to the rotation, for a before/after
# comparison of a change in the same run.
#
# Needs the fixture (../shared/bench/fixture.sh create SIZE). Peak memory is planrun's own
# process (VmHWM sampled from /proc while it runs), not pg_dump's or zstd's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
size=${1:?usage: bench/nightly.sh small|large [REPS]}
reps=${2:-3}
source "$SHARED/lib.sh"
fixture_env "$size"
pg_running || "$SHARED/fixture.sh" start "$size"

cargo build --release --quiet
BIN=$ROOT/target/release/planrun
OUT=$(mktemp -d "${BENCH_OUT}-nightly.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

# The plan a user of the fixture would write: the seed's three sources, one local storage.
cat > "$OUT/nightly.yaml" <<EOF
version: 1
name: bench-nightly
sources:
  db: { postgres: { database: crm, host: "$PGHOST", port: $PGPORT, user: "$PGUSER" } }
  media: { directory: { path: "$FX/app/media" } }
  config: { files: ["$FX/app/config/.env", "$FX/app/config/settings.py"] }
storage:
  local: { local: { path: "$OUT/backups" } }
retention: { keep_last: 1 }
steps:
  - { id: db, backup: db }
  - { id: media, backup: media }
  - { id: config, backup: config }
EOF
"$BIN" validate "$OUT/nightly.yaml" > /dev/null

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# The TOTAL_wall of the last rep baseline.sh appended to its raw log.
baseline_total() { awk -F'\t' -v s="$size" -v m="$1" '$3==s && $4==m && $6=="TOTAL_wall" {t=$7} END {print t}' "$BENCH_OUT/baseline.tsv"; }

# run_planrun BINARY NAME: one timed nightly, its seconds and peak KiB appended to NAME.s/.kib
run_planrun() {
  rm -rf "$OUT/backups" "$OUT/state"; sync
  local t0 pid hwm=0 h
  t0=$(now)
  "$1" execute --state-dir "$OUT/state" "$OUT/nightly.yaml" > /dev/null 2> "$OUT/planrun.err" &
  pid=$!
  while kill -0 "$pid" 2> /dev/null; do
    h=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
    [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    sleep 0.05
  done
  wait "$pid" || { cat "$OUT/planrun.err" >&2; exit 1; }
  elapsed "$t0" >> "$OUT/$2.s"
  echo "$hwm" >> "$OUT/$2.kib"
}

: > "$OUT/planrun.s"; : > "$OUT/seq.s"; : > "$OUT/fast.s"; : > "$OUT/planrun.kib"
: > "$OUT/before.s"; : > "$OUT/before.kib"
variants=(planrun fast seq ${BEFORE:+before})
n=${#variants[@]}
for rep in $(seq 1 "$reps"); do
  # Rotate the order each rep so no variant always runs first (or right after another).
  order=()
  for i in $(seq 0 $((n - 1))); do order+=("${variants[$(( (i + rep - 1) % n ))]}"); done
  for v in "${order[@]}"; do
    wait_quiet 2>> "$OUT/quiet.log"
    case $v in
      planrun) run_planrun "$BIN" planrun ;;
      before) run_planrun "$BEFORE" before ;;
      *) QUIET_TIMEOUT=0 "$SHARED/baseline.sh" "$size" "$v" 1 > /dev/null
         baseline_total "$v" >> "$OUT/$v.s" ;;
    esac
  done
done

p=$(median < "$OUT/planrun.s"); s=$(median < "$OUT/seq.s"); f=$(median < "$OUT/fast.s")
k=$(median < "$OUT/planrun.kib")
awk -v p="$p" -v s="$s" -v f="$f" -v k="$k" -v size="$size" -v reps="$reps" 'BEGIN {
  printf "nightly on %s, %d alternating reps, medians\n", size, reps
  printf "seed script (baseline seq) : %7.2f s\n", s
  printf "hand-built floor (fast)    : %7.2f s\n", f
  printf "planrun execute            : %7.2f s  = %.2fx the floor, %.2fx the seed script\n", p, p / f, p / s
  printf "planrun peak RSS           : %7.1f MiB\n", k / 1024
}'
if [ -n "${BEFORE:-}" ]; then
  b=$(median < "$OUT/before.s"); bk=$(median < "$OUT/before.kib")
  awk -v p="$p" -v b="$b" -v k="$k" -v bk="$bk" 'BEGIN {
    printf "before (BEFORE=)           : %7.2f s  -> this build is %.2fx its time; peak RSS %.1f -> %.1f MiB\n", b, p / b, bk / 1024, k / 1024
  }'
fi
