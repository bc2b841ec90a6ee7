#!/usr/bin/env bash
# `make cluster-demo`: several upgate nodes sharing one registry in etcd, on loopback, step by
# step. An application registers once, at one node; every node takes its uploads; etcd goes
# away and comes back. Starts from nothing (etcd on free ports in a temporary directory; the
# Debian package etcd-server is installed when missing), leaves nothing behind (every process
# stopped by PID). docs/operations.md, "Many nodes", explains what is shown.
#
# Not shown yet: a file uploaded at one node downloaded from another, which needs the S3
# origin (`store = "s3"`, not built yet).
# shellcheck source=lib.sh source-path=SCRIPTDIR disable=SC2119
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STEPS=8
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "Build upgate ($PROFILE) and find etcd"
build
if ! command -v etcd >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "etcd is missing: apt-get install etcd-server"
  echo "    installing etcd-server (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >"$WORK/apt.log" 2>&1 ||
    die "apt-get install etcd-server failed"
fi
echo "    ok: $UPGATE, $(etcd --version | head -1)"

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

step "Start three upload nodes, each with its own data dir, sharing the registry in etcd"
NODE_URLS=()
for i in 1 2 3; do
  cat >"$WORK/node$i.toml" <<EOF
listen = "127.0.0.1:0"
data_dir = "$WORK/node$i"
threads = 1
node_id = "node$i"
registry = "etcd"
etcd_endpoints = ["$ETCD_URL"]
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
echo
echo "Not shown yet: downloading node2's file from node3 (the S3 origin, store = \"s3\", is not built)."
