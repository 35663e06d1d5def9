#!/usr/bin/env bash
# Copy of a 1 GiB backup set to a loopback S3 server (s3s-fs, SigV4): planrun's copy
# (`planrun execute` of a plan whose one `copy` step sends the set: multipart, parallel parts,
# sha256 metadata, HEAD check, manifest last; wall clock of the whole process) against
# `aws s3 cp --recursive` of the same files, measured in the same run, best of 3 each.
# SIZE_MIB (default 1024) shrinks the set for a quick check of the script itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin planrun --example s3_server
planrun=target/release/planrun
server=target/release/examples/s3_server
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ak=bench-access; sk=bench-secret-key; port=$(( 20000 + RANDOM % 20000 ))
size=${SIZE_MIB:-1024}
set_id=20261126T020000Z-beef
set_dir=$work/store/crm/$set_id
mkdir -p "$work/s3/bench" "$set_dir"
"$server" "$work/s3" "$port" "$ak" "$sk" & server_pid=$!
sleep 0.5

# The set: a database dump of 3/4 of SIZE, a media archive of the rest less 1 MiB, a
# 1 MiB config archive; the manifest as planrun writes it.
head -c $((size * 3 / 4 * 1024 * 1024)) /dev/urandom > "$set_dir/db.dump.zst"
head -c $(((size - size * 3 / 4 - 1) * 1024 * 1024)) /dev/urandom > "$set_dir/media.tar.zst"
head -c $((1024 * 1024)) /dev/urandom > "$set_dir/config.tar.zst"
python3 - "$set_dir" "$set_id" <<'PY'
import hashlib, json, os, sys
d, set_id = sys.argv[1], sys.argv[2]
arts = []
for name, source, kind in [("db.dump.zst", "db", "pg_dump_custom_zstd"),
                           ("media.tar.zst", "media", "tar_zstd"),
                           ("config.tar.zst", "config", "tar_zstd")]:
    h = hashlib.sha256()
    with open(os.path.join(d, name), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    arts.append({"name": name, "source": source, "kind": kind,
                 "size": os.path.getsize(os.path.join(d, name)), "sha256": h.hexdigest(), "facts": {}})
json.dump({"format": 1, "planrun_version": "0.1.0", "set_id": set_id,
           "plan": {"name": "crm", "digest": "00"}, "host": "bench",
           "started_at": "2026-11-26T02:00:00Z", "finished_at": "2026-11-26T02:01:00Z",
           "artifacts": arts}, open(os.path.join(d, "manifest.json"), "w"))
PY

export AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_CONFIG_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
planrun_copy() {
  local t0 t1
  cat > "$work/plan.yaml" <<YAML
version: 1
name: crm
storage:
  local: { local: { path: "$work/store" } }
  offsite:
    s3: { bucket: bench, prefix: "planrun-$1/", endpoint: "http://127.0.0.1:$port", path_style: true, allow_http: true }
steps:
  - { id: offsite, copy: { to: offsite, set: "$set_id" } }
YAML
  t0=$(date +%s%N)
  "$planrun" execute "$work/plan.yaml" --state-dir "$work/state" > "$work/run" 2>&1 \
    || { cat "$work/run" >&2; exit 1; }
  t1=$(date +%s%N)
  echo "scale=2; ($t1 - $t0) / 1000000000" | bc
}
aws_cp() {
  local t0 t1
  t0=$(date +%s%N)
  aws --endpoint-url "http://127.0.0.1:$port" --region us-east-1 s3 cp --only-show-errors --recursive \
    "$set_dir" "s3://bench/aws-$1/"
  t1=$(date +%s%N)
  echo "scale=2; ($t1 - $t0) / 1000000000" | bc
}
best_planrun=999; best_aws=999
for round in 1 2 3; do
  p=$(planrun_copy "$round")
  a=$(aws_cp "$round")
  echo "round $round: planrun copy ${p}s, aws s3 cp ${a}s"
  best_planrun=$(echo "if ($p < $best_planrun) $p else $best_planrun" | bc)
  best_aws=$(echo "if ($a < $best_aws) $a else $best_aws" | bc)
  rm -rf "${work:?}/s3/bench/"*
done
echo "${size} MiB set to loopback S3, best of 3: planrun copy ${best_planrun}s, aws s3 cp ${best_aws}s"
