#!/usr/bin/env bash
# planrun's backup benchmarks on the shared CRM fixture (../shared/bench/fixture.sh small):
#  1. directory backup of the media folder (`planrun execute` of a one-step plan, release
#     build, wall clock of the whole process) vs `tar -cf - DIR | zstd -T0 -3 > out`, same run;
#  2. hashing overhead: the directory source's producer (walk, tar, zstd) into an artifact
#     writer with and without sha256; and, for reference, a raw write from memory, where
#     nothing else competes and hashing (~1.3 GiB/s) is the bottleneck by construction.
#     These need the writer itself, so they are `#[ignore]` tests in
#     src/storage/artifact_writer/bench.rs, run from a release build of the unit tests;
#  3. peak memory of the directory backup (/usr/bin/time -v of `planrun execute`).
# Prints medians over REPS runs (default 5). Warm cache: every variant reads the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
FX=${FIXTURE_ROOT:-/tmp/planrun-fixture}/small
MEDIA=$FX/app/media
[ -d "$MEDIA" ] || { echo "no fixture at $FX: run ../shared/bench/fixture.sh small (or /work/shared/bench/fixture.sh small)" >&2; exit 2; }
command -v zstd >/dev/null || { echo "zstd is needed for the baseline" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (package time)" >&2; exit 2; }

cargo build --release --quiet
BIN=target/release/planrun
# The unit-test binary that holds the writer measurements (built once, run per measurement).
TESTS=$(cargo test --release --lib --no-run 2>&1 | sed -n 's/.*Executable unittests src\/lib.rs (\(.*\))/\1/p')
[ -x "$TESTS" ] || { echo "could not build the unit tests" >&2; exit 2; }
OUT=$(mktemp -d /var/tmp/planrun-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
cat > "$OUT/plan.yaml" <<YAML
version: 1
name: bench
sources:
  media: { directory: { path: "$MEDIA" } }
storage:
  local: { local: { path: "$OUT/store" } }
steps:
  - { id: media, backup: media }
YAML
# One measurement of the writer: MODE (hash, nohash, archive_hash, archive_nohash) on INPUT.
writer_bench() {
  PLANRUN_BENCH_INPUT=$2 PLANRUN_BENCH_DIR=$OUT/h "$TESTS" --ignored --nocapture --exact \
    "storage::artifact_writer::bench::bench_$1" | awk '$2 == "seconds" {print $3}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

bytes=$(du -sb "$MEDIA" | cut -f1)
# One warm-up read so the first variant is not penalised by a cold cache.
tar -cf - -C "$MEDIA" . > /dev/null

: > "$OUT/base" ; : > "$OUT/dir" ; : > "$OUT/rss" ; : > "$OUT/hash" ; : > "$OUT/nohash" ; : > "$OUT/ahash" ; : > "$OUT/anohash"
# `sync` before every timed variant: with ext4's ordered journal one run's fsync would
# otherwise also pay for the previous run's writeback, which favours whichever goes first.
for i in $(seq "$REPS"); do
  rm -f "$OUT/baseline.tar.zst"; sync
  t0=$(now); tar -cf - -C "$MEDIA" . | zstd -T0 -3 -q > "$OUT/baseline.tar.zst"; sync "$OUT/baseline.tar.zst"; t1=$(now)
  echo "$t1 - $t0" | bc >> "$OUT/base"
  rm -rf "$OUT/store" "$OUT/state"; sync
  t0=$(now); /usr/bin/time -v "$BIN" execute "$OUT/plan.yaml" --state-dir "$OUT/state" > "$OUT/run" 2> "$OUT/time"; t1=$(now)
  echo "$t1 - $t0" | bc >> "$OUT/dir"
  awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/time" >> "$OUT/rss"
  mkdir -p "$OUT/h"
  # Alternate which variant goes first.
  if [ $((i % 2)) -eq 0 ]; then order="hash nohash"; else order="nohash hash"; fi
  for v in $order; do
    sync; writer_bench "$v" "$OUT/baseline.tar.zst" >> "$OUT/$v"
  done
  for v in $order; do
    sync; writer_bench "archive_$v" "$MEDIA" >> "$OUT/a$v"
  done
done

base=$(median < "$OUT/base"); dir=$(median < "$OUT/dir"); rss=$(median < "$OUT/rss")
hash=$(median < "$OUT/hash"); nohash=$(median < "$OUT/nohash")
ahash=$(median < "$OUT/ahash"); anohash=$(median < "$OUT/anohash")
artifact=$(stat -c %s "$OUT/baseline.tar.zst")
awk -v b="$bytes" -v base="$base" -v dir="$dir" -v rss="$rss" -v h="$hash" -v nh="$nohash" -v ah="$ahash" -v anh="$anohash" -v a="$artifact" -v reps="$REPS" 'BEGIN {
  mib = 1048576
  printf "media: %.1f MiB, %d runs, medians\n", b / mib, reps
  printf "tar | zstd -T0 -3 : %6.2f s  %6.1f MiB/s\n", base, b / mib / base
  printf "planrun directory : %6.2f s  %6.1f MiB/s  (%.0f%% of the baseline throughput; target >= 80%%)\n", dir, b / mib / dir, 100 * base / dir
  printf "directory artifact (walk+tar+zstd+write): %.3f s hashed, %.3f s unhashed: hashing adds %.1f%% (target <= 5%%)\n", ah, anh, 100 * (ah - anh) / anh
  printf "raw write of %.1f MiB from memory: %.3f s hashed, %.3f s unhashed (+%.0f%%: sha256 bound, for reference)\n", a / mib, h, nh, 100 * (h - nh) / nh
  printf "peak memory of the directory backup: %.1f MiB (target <= 64 MiB)\n", rss / 1024
}'
