#!/usr/bin/env bash
# Benchmarks for `planrun execute` (issue 3), not timed tests:
#  (a) 100 sequential `run: [true]` steps against a shell loop running `true` 100 times:
#      planrun's per-step overhead is (planrun - loop) / 100, target <= 2 ms;
#  (b) 8 independent `sleep 1` steps with --concurrency 8, target < 1.3 s.
# Uses a release build and hyperfine when installed (apt-get install -y hyperfine), else a
# plain loop of runs with the median printed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --manifest-path "$here/Cargo.toml" --quiet
planrun="$here/target/release/planrun"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

{
  echo "version: 1"
  echo "name: bench-sequential"
  echo "steps:"
  echo "  - { id: s0, run: [\"true\"] }"
  for i in $(seq 1 99); do
    echo "  - { id: s$i, run: [\"true\"], needs: [s$((i - 1))] }"
  done
} > "$work/sequential.yaml"

{
  echo "version: 1"
  echo "name: bench-parallel"
  echo "steps:"
  for i in $(seq 1 8); do
    echo "  - { id: p$i, run: [sleep, \"1\"] }"
  done
} > "$work/parallel.yaml"

sequential="$planrun execute $work/sequential.yaml --state-dir $work/state"
loop="bash -c 'for i in \$(seq 100); do /bin/true; done'"
parallel="$planrun execute $work/parallel.yaml --state-dir $work/state --concurrency 8"

if command -v hyperfine > /dev/null; then
  hyperfine --warmup 3 --runs 30 --style basic --export-json "$work/a.json" \
    -n "planrun: 100 sequential steps" "$sequential 2>/dev/null" \
    -n "shell loop: true x100" "$loop"
  hyperfine --warmup 1 --runs 10 --style basic --export-json "$work/b.json" \
    -n "planrun: 8 x sleep 1, concurrency 8" "$parallel 2>/dev/null"
  python3 - "$work/a.json" "$work/b.json" <<'PY'
import json, sys
a = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
b = {r["command"]: r["median"] for r in json.load(open(sys.argv[2]))["results"]}
steps, loop = a["planrun: 100 sequential steps"], a["shell loop: true x100"]
print(f"(a) median planrun {steps*1000:.1f} ms, loop {loop*1000:.1f} ms, "
      f"overhead per step {(steps - loop) * 1000 / 100:.2f} ms (target <= 2 ms)")
print(f"(b) median {list(b.values())[0]:.3f} s (target < 1.3 s)")
PY
else
  median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
  time_ms() { local s e; s=$(date +%s%N); eval "$1" > /dev/null 2>&1; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
  a=$(for _ in $(seq 20); do time_ms "$sequential"; done | median)
  l=$(for _ in $(seq 20); do time_ms "$loop"; done | median)
  b=$(for _ in $(seq 5); do time_ms "$parallel"; done | median)
  echo "(a) median planrun ${a} ms, loop ${l} ms, overhead per step $(awk -v a="$a" -v l="$l" 'BEGIN { printf "%.2f", (a - l) / 100 }') ms (target <= 2 ms)"
  echo "(b) median ${b} ms (target < 1300 ms)"
fi
