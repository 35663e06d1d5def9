#!/usr/bin/env bash
# Throughput of a backup tool's stdout streamed into an artifact: a pg_dump of the shared
# fixture's `crm` database (../shared/bench/fixture.sh small|large) through planrun's
# postgres source (pg_dump -Fc -Z0 | zstd -3, hashed), run as `planrun execute` of a one-step
# plan (release build, wall clock and peak RSS of the whole process), against the same
# pipeline in the shell (`pg_dump -Fc -Z0 | zstd -T0 -3 > out`), alternating, medians over
# REPS (default 5). `BASELINE_BIN=path/to/an/older/planrun` adds that build to the rotation,
# to compare two versions of planrun in the same run. `PG_BIN_DIR` picks pg_dump's folder.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
SIZE=${SIZE:-small}
eval "$(/work/shared/bench/fixture.sh env "$SIZE" 2>/dev/null || ../shared/bench/fixture.sh env "$SIZE")"
export PGHOST PGPORT PGUSER
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (package time)" >&2; exit 2; }
cargo build --release --quiet
BIN=target/release/planrun
OUT=$(mktemp -d /var/tmp/planrun-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
# The connection comes from the PG* environment, which pg_dump inherits.
cat > "$OUT/plan.yaml" <<YAML
version: 1
name: bench
sources:
  db: { postgres: { database: crm${PG_BIN_DIR:+, bin_dir: "$PG_BIN_DIR"} } }
storage:
  local: { local: { path: "$OUT/store" } }
steps:
  - { id: db, backup: db }
YAML
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }
variants="shell planrun"
[ -n "${BASELINE_BIN:-}" ] && variants="$variants baseline"
for v in $variants; do : > "$OUT/$v"; : > "$OUT/$v.rss"; done
for i in $(seq "$REPS"); do
  for v in $variants; do
    rm -rf "$OUT/store" "$OUT/state" "$OUT/dump.zst"; sync
    case $v in
      shell)
        t0=$(now); pg_dump -Fc -Z0 crm | zstd -T0 -3 -q > "$OUT/dump.zst"; sync "$OUT/dump.zst"; t1=$(now)
        echo "$t1 - $t0" | bc >> "$OUT/shell" ;;
      planrun|baseline)
        bin=$BIN; [ "$v" = baseline ] && bin=$BASELINE_BIN
        t0=$(now); /usr/bin/time -v "$bin" execute "$OUT/plan.yaml" --state-dir "$OUT/state" > "$OUT/run" 2> "$OUT/time"; t1=$(now)
        echo "$t1 - $t0" | bc >> "$OUT/$v"
        awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/time" >> "$OUT/$v.rss" ;;
    esac
  done
  # Rotate which variant goes first.
  variants="${variants#* } ${variants%% *}"
done
for v in shell planrun baseline; do
  [ -s "$OUT/$v" ] || continue
  t=$(median < "$OUT/$v")
  rss=$( [ -s "$OUT/$v.rss" ] && median < "$OUT/$v.rss" || echo 0)
  printf "%-9s %6.2f s  peak RSS %6.1f MiB\n" "$v" "$t" "$(echo "$rss / 1024" | bc -l)"
done
