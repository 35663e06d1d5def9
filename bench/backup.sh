#!/usr/bin/env bash
# planrun's backup benchmarks on the shared CRM fixture (../shared/bench/fixture.sh small):
#  1. directory backup of the media folder vs `tar -cf - DIR | zstd -T0 -3 > out`, same run;
#  2. hashing overhead: one artifact written through ArtifactWriter with and without sha256;
#  3. peak memory of the directory backup (/usr/bin/time -v).
# Prints medians over REPS runs (default 5). Warm cache: every variant reads the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
FX=${FIXTURE_ROOT:-/tmp/planrun-fixture}/small
MEDIA=$FX/app/media
[ -d "$MEDIA" ] || { echo "no fixture at $FX: run ../shared/bench/fixture.sh small (or /work/shared/bench/fixture.sh small)" >&2; exit 2; }
command -v zstd >/dev/null || { echo "zstd is needed for the baseline" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (package time)" >&2; exit 2; }

cargo build --release --quiet --example backup_bench
BIN=target/release/examples/backup_bench
OUT=$(mktemp -d /var/tmp/planrun-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

bytes=$(du -sb "$MEDIA" | cut -f1)
# One warm-up read so the first variant is not penalised by a cold cache.
tar -cf - -C "$MEDIA" . > /dev/null

: > "$OUT/base" ; : > "$OUT/dir" ; : > "$OUT/rss" ; : > "$OUT/hash" ; : > "$OUT/nohash"
for _ in $(seq "$REPS"); do
  t0=$(now); tar -cf - -C "$MEDIA" . | zstd -T0 -3 -q > "$OUT/baseline.tar.zst"; sync "$OUT/baseline.tar.zst"; t1=$(now)
  echo "$t1 - $t0" | bc >> "$OUT/base"
  rm -rf "$OUT/store"
  /usr/bin/time -v "$BIN" dir "$MEDIA" "$OUT/store" > "$OUT/run" 2> "$OUT/time"
  awk '{print $3}' "$OUT/run" >> "$OUT/dir"
  awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/time" >> "$OUT/rss"
  mkdir -p "$OUT/h"
  "$BIN" hash "$OUT/baseline.tar.zst" "$OUT/h" | awk '{print $3}' >> "$OUT/hash"
  "$BIN" nohash "$OUT/baseline.tar.zst" "$OUT/h" | awk '{print $3}' >> "$OUT/nohash"
done

base=$(median < "$OUT/base"); dir=$(median < "$OUT/dir"); rss=$(median < "$OUT/rss")
hash=$(median < "$OUT/hash"); nohash=$(median < "$OUT/nohash")
artifact=$(stat -c %s "$OUT/baseline.tar.zst")
awk -v b="$bytes" -v base="$base" -v dir="$dir" -v rss="$rss" -v h="$hash" -v nh="$nohash" -v a="$artifact" -v reps="$REPS" 'BEGIN {
  mib = 1048576
  printf "media: %.1f MiB, %d runs, medians\n", b / mib, reps
  printf "tar | zstd -T0 -3 : %6.2f s  %6.1f MiB/s\n", base, b / mib / base
  printf "planrun directory : %6.2f s  %6.1f MiB/s  (%.0f%% of the baseline throughput; target >= 80%%)\n", dir, b / mib / dir, 100 * base / dir
  printf "artifact write %.1f MiB: %.3f s hashed, %.3f s unhashed: hashing adds %.1f%% (target <= 5%%)\n", a / mib, h, nh, 100 * (h - nh) / nh
  printf "peak memory of the directory backup: %.1f MiB (target <= 64 MiB)\n", rss / 1024
}'
