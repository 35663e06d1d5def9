#!/usr/bin/env bash
# Benchmark (not a timed test) for `planrun validate plans/nightly.yaml` in a release build:
# every layer, including the include of common.yaml. Target: median under 20 ms.
# Needs hyperfine (apt-get install -y hyperfine).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --manifest-path "$here/Cargo.toml" --quiet
cd "$here"
out=$(mktemp)
hyperfine -N --warmup 5 --runs 100 --export-json "$out" \
  "$here/target/release/planrun validate plans/nightly.yaml" >/dev/null
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print('validate plans/nightly.yaml: median %.1f ms, mean %.1f ms, min %.1f ms over %d runs' % (r['median']*1e3, r['mean']*1e3, r['min']*1e3, len(r['times'])))" "$out"
rm -f "$out"
