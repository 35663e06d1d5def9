#!/usr/bin/env bash
# Copy of a 1 GiB backup set to a loopback S3 server (s3s-fs, SigV4): planrun's copy
# (multipart, parallel parts, sha256 metadata, HEAD check, manifest last) against
# `aws s3 cp --recursive` of the same files, measured in the same run, best of 3 each.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example s3_bench
bin=target/release/examples/s3_bench
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ak=bench-access; sk=bench-secret-key; port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$work/s3/bench" "$work/set"
"$bin" serve "$work/s3" "$port" "$ak" "$sk" & server_pid=$!
sleep 0.5

# The set: a 768 MiB database dump, a 255 MiB media archive, a small config archive.
set_id=20261126T020000Z-beef
head -c $((768 * 1024 * 1024)) /dev/urandom > "$work/set/db.dump.zst"
head -c $((255 * 1024 * 1024)) /dev/urandom > "$work/set/media.tar.zst"
head -c $((1024 * 1024)) /dev/urandom > "$work/set/config.tar.zst"
python3 - "$work/set" "$set_id" <<'PY'
import hashlib, json, os, sys
d, set_id = sys.argv[1], sys.argv[2]
arts = []
for name in ["db.dump.zst", "media.tar.zst", "config.tar.zst"]:
    h = hashlib.sha256()
    with open(os.path.join(d, name), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    arts.append({"name": name, "source": "x", "kind": "tar_zstd", "size": os.path.getsize(os.path.join(d, name)),
                 "sha256": h.hexdigest(), "facts": {}})
json.dump({"format": 1, "set_id": set_id, "artifacts": arts}, open(os.path.join(d, "manifest.json"), "w"))
PY

export AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_CONFIG_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
aws_cp() {
  local t0 t1
  t0=$(date +%s%N)
  aws --endpoint-url "http://127.0.0.1:$port" --region us-east-1 s3 cp --only-show-errors --recursive \
    "$work/set" "s3://bench/aws-$1/"
  t1=$(date +%s%N)
  echo "scale=2; ($t1 - $t0) / 1000000000" | bc
}
best_planrun=999; best_aws=999
for round in 1 2 3; do
  p=$("$bin" copy "$work/set" crm "$set_id" "http://127.0.0.1:$port" bench "planrun-$round/" "$ak" "$sk" | cut -d' ' -f1)
  a=$(aws_cp "$round")
  echo "round $round: planrun copy ${p}s, aws s3 cp ${a}s"
  best_planrun=$(echo "if ($p < $best_planrun) $p else $best_planrun" | bc)
  best_aws=$(echo "if ($a < $best_aws) $a else $best_aws" | bc)
  rm -rf "$work/s3/bench/"*
done
echo "1 GiB set to loopback S3, best of 3: planrun copy ${best_planrun}s, aws s3 cp ${best_aws}s"
