#!/usr/bin/env bash
# `make cluster-demo`: three upgate nodes sharing one registry in etcd and one S3 origin
# (Garage), on loopback, step by step. An application registers once, at one node; every node
# takes its uploads; a file uploaded at one node downloads from the others (a miss there: from
# the origin); etcd goes away and comes back. Starts from nothing (etcd and Garage on free ports
# in a temporary directory; the Debian package etcd-server is installed when missing, Garage by
# scripts/garage-deps.sh), leaves nothing behind (every process stopped by PID).
# docs/operations.md, "Many nodes", explains what is shown.
# shellcheck source=lib.sh source-path=SCRIPTDIR disable=SC2119
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STEPS=10
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "Build upgate ($PROFILE) and find etcd"
build
if ! command -v etcd >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "etcd is missing: apt-get install etcd-server"
  echo "    installing etcd-server (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >"$WORK/apt.log" 2>&1 ||
    die "apt-get install etcd-server failed"
fi
bash "$(dirname "${BASH_SOURCE[0]}")/garage-deps.sh" >"$WORK/garage-deps.log" 2>&1 ||
  die "garage is missing and could not be installed: $(tail -3 "$WORK/garage-deps.log")"
GARAGE=$(command -v garage || true)
for candidate in "$HOME/.cargo/bin/garage" "$(dirname "${BASH_SOURCE[0]}")/../target/tools/bin/garage"; do
  [ -z "$GARAGE" ] && [ -x "$candidate" ] && GARAGE=$candidate
done
[ -n "$GARAGE" ] || die "garage not found after scripts/garage-deps.sh"
echo "    ok: $UPGATE, $(etcd --version | head -1), $("$GARAGE" --version 2>&1 | head -1)"

ETCD_CLIENT=$(free_port)
ETCD_PEER=$(free_port)
ETCD_URL="http://127.0.0.1:$ETCD_CLIENT"
start_etcd() {
  etcd --name n1 --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "n1=http://127.0.0.1:$ETCD_PEER" >"$WORK/etcd.out" 2>"$WORK/etcd.log" &
  ETCD_PID=$!
  STARTED+=("$ETCD_PID")
  for _ in $(seq 200); do
    curl -sf "$ETCD_URL/health" >/dev/null && return 0
    sleep 0.05
  done
  die "etcd did not become healthy"
}

step "Start etcd (one member) on $ETCD_URL"
start_etcd
echo "    etcd pid $ETCD_PID, healthy: $(curl -s "$ETCD_URL/health")"

step "Start Garage (one node) as the S3 origin, with a bucket and a key for upgate"
GARAGE_RPC=$(free_port)
GARAGE_S3=$(free_port)
S3_URL="http://127.0.0.1:$GARAGE_S3"
# Fixed demo credentials (Garage: "GK" + 24 hex digits, and 64 hex digits).
export AWS_ACCESS_KEY_ID=GK00000000000000000000dead
export AWS_SECRET_ACCESS_KEY=00000000000000000000000000000000000000000000000000000000000dead
cat >"$WORK/garage.toml" <<EOF
metadata_dir = "$WORK/garage/meta"
data_dir = "$WORK/garage/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$GARAGE_RPC"
rpc_public_addr = "127.0.0.1:$GARAGE_RPC"
rpc_secret = "$(printf '%064d' 1)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$GARAGE_S3"
root_domain = ".s3.garage.localhost"
EOF
g() { "$GARAGE" -c "$WORK/garage.toml" "$@"; }
RUST_LOG=garage=warn "$GARAGE" -c "$WORK/garage.toml" server >"$WORK/garage.log" 2>&1 &
GARAGE_PID=$!
STARTED+=("$GARAGE_PID")
for _ in $(seq 200); do
  g status >/dev/null 2>&1 && break
  sleep 0.05
done
g status >/dev/null 2>&1 || die "garage did not start: $(tail -3 "$WORK/garage.log")"
{
  g layout assign -z dc1 -c 1G "$(g node id -q | cut -d@ -f1)"
  g layout apply --version 1
  g key import --yes -n demo "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
  g bucket create upgate
  g bucket allow --read --write --owner upgate --key demo
} >"$WORK/garage-setup.log" 2>&1 || die "garage setup failed: $(tail -3 "$WORK/garage-setup.log")"
s3() {
  curl -sS --aws-sigv4 "aws:amz:garage:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
for _ in $(seq 100); do
  [ "$(s3 -o /dev/null -w '%{http_code}' -I "$S3_URL/upgate")" = 200 ] && break
  sleep 0.05
done
echo "    garage pid $GARAGE_PID, S3 API on $S3_URL, bucket upgate"

step "Start three upload nodes, each with its own data dir, sharing the registry in etcd and the origin in Garage"
NODE_URLS=()
for i in 1 2 3; do
  cat >"$WORK/node$i.toml" <<EOF
listen = "127.0.0.1:0"
data_dir = "$WORK/node$i"
threads = 1
node_id = "node$i"
registry = "etcd"
etcd_endpoints = ["$ETCD_URL"]
store = "s3"
s3_endpoint = "$S3_URL"
s3_region = "garage"
origin_write = "before_callback"
public_url = "http://uploads.example"
EOF
  "$UPGATE" serve --config "$WORK/node$i.toml" >"$WORK/node$i.out" 2>"$WORK/node$i.log" &
  pid=$!
  STARTED+=("$pid")
  NODE_URLS+=("$(wait_for_line "$WORK/node$i.out" "upgate listening on " "$pid")")
  echo "    node$i: ${NODE_URLS[$((i - 1))]} (pid $pid)"
done
echo "    each node's config (node1's):"
indent <"$WORK/node1.toml"

step "Start the application server; it registers itself at node1 only"
NODE_URL=${NODE_URLS[0]}
start_app --appid demo --allow-ext txt,bin --max-size 50M
indent <"$WORK/app.out"
sleep 0.2
for i in 2 3; do
  echo "    node$i already knows the app (GET /upload/register/demo):"
  curl -sS "${NODE_URLS[$((i - 1))]}/upload/register/demo" | head -c 300 | indent
  echo
done

step "Upload at node2 and at node3 (each asks the app, stores, notifies), download back"
cd "$WORK"
for i in 2 3; do
  url=${NODE_URLS[$((i - 1))]}
  head -c $((2 * 1024 * 1024)) /dev/urandom >"from-node$i.bin"
  "$UPGATE" upload "from-node$i.bin" "$url/demo/cluster/from-node$i.bin" >"up$i.json" ||
    die "upload at node$i failed"
  indent <"up$i.json"
  curl -sS -o "back$i.bin" "$url/demo/cluster/from-node$i.bin"
  cmp -s "from-node$i.bin" "back$i.bin" || die "node$i served other bytes"
  echo "    node$i serves the same $(stat -c %s "back$i.bin") bytes"
done

step "Download node2's file from node3 and node1: a miss there, streamed from the origin"
echo "    the origin holds it: $(s3 -I "$S3_URL/upgate/demo/cluster/from-node2.bin" | grep -i '^content-length' | tr -d '\r')"
for i in 3 1; do
  url=${NODE_URLS[$((i - 1))]}
  [ -e "$WORK/node$i/files/demo/cluster/from-node2.bin" ] && die "node$i had the file before"
  curl -sS -o "node2-via-node$i.bin" "$url/demo/cluster/from-node2.bin"
  cmp -s from-node2.bin "node2-via-node$i.bin" || die "node$i served other bytes"
  echo "    node$i serves node2's $(stat -c %s "node2-via-node$i.bin") bytes, and now holds them in its cache"
done
curl -sS "${NODE_URLS[2]}/metrics" | grep '^upgate_origin_fetches_total' | indent

step "Stop etcd: uploads for the known app go on; registration answers 503"
stop "$ETCD_PID"
sleep 0.3
head -c 4096 /dev/urandom >during-outage.bin
"$UPGATE" upload during-outage.bin "${NODE_URLS[2]}/demo/cluster/during-outage.bin" >up-outage.json ||
  die "the upload at node3 failed while etcd was down"
echo "    upload at node3 while etcd is down:"
indent <up-outage.json
echo "    a registration at node1:"
curl -sS -i -X POST "${NODE_URLS[0]}/upload/register" -H 'Content-Type: application/json' \
  -d '{"appid":"newcomer","callback_url_post":"http://127.0.0.1:9/post"}' |
  grep -E '^HTTP|^Retry-After|^\{' | indent
sleep 0.5
echo "    node2's /readyz:"
curl -sS "${NODE_URLS[1]}/readyz" | head -c 400 | indent
echo

step "Start etcd again: every node catches up"
start_etcd
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "${NODE_URLS[1]}/readyz")
  [ "$code" = 200 ] && break
  sleep 0.1
done
echo "    node2's /readyz: $(curl -sS "${NODE_URLS[1]}/readyz")"
grep -h "etcd reachable again" "$WORK"/node*.log | indent || true

step "Stop everything"
for pid in "${STARTED[@]}"; do stop "$pid"; done
echo "    every process stopped; $WORK is removed on exit"
