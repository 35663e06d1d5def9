#!/usr/bin/env bash
# Listing a storage that holds 10,000 sets (target for `snapshots`: under 1 s locally).
# Times `planrun prune --dry-run` (list every set, read its manifest, decide, print the table)
# and, when this build has it, `planrun snapshots`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin planrun
bin=$PWD/target/release/planrun
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/backups/crm" <<'PY'
import datetime, hashlib, json, os, sys
root = sys.argv[1]
start = datetime.datetime(2015, 1, 1)
for i in range(10_000):
    set_id = (start + datetime.timedelta(hours=6 * i)).strftime("%Y%m%dT%H%M%SZ") + "-%04x" % i
    d = os.path.join(root, set_id)
    os.makedirs(d)
    with open(os.path.join(d, "db.dump.zst"), "wb") as f:
        f.write(b"x" * 100)
    # A whole manifest: anything less is a damaged set, and a damaged newest set stops prune.
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump({"format": 1, "planrun_version": "0.1.0", "set_id": set_id,
                   "plan": {"name": "crm", "digest": "00"}, "host": "bench",
                   "started_at": "2015-01-01T00:00:00Z", "finished_at": "2015-01-01T00:00:01Z",
                   "artifacts": [{"name": "db.dump.zst", "source": "db", "kind": "sqlite_zstd",
                                  "size": 100, "sha256": hashlib.sha256(b"x" * 100).hexdigest(),
                                  "facts": {}}]}, f)
PY
cat > "$work/plan.yaml" <<YAML
version: 1
name: crm
storage:
  local:
    local: { path: "$work/backups" }
retention: { keep_daily: 14, keep_weekly: 8, keep_monthly: 12, keep_yearly: unlimited }
steps:
  - { id: hello, run: ["true"] }
YAML
timed() {
  local best=999999 t0 t1 ms
  for _ in 1 2 3; do
    t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 )); (( ms < best )) && best=$ms
  done
  echo "$best"
}
echo "prune --dry-run over 10000 local sets: best of 3 = $(timed "$bin" prune --dry-run "$work/plan.yaml") ms"
if "$bin" snapshots --help >/dev/null 2>&1; then
  echo "snapshots over 10000 local sets: best of 3 = $(timed "$bin" snapshots "$work/plan.yaml") ms"
fi
