#!/bin/bash
# One 1 GiB upload to a fresh node (fsync = false, zero_copy = ZERO_COPY), with
# `perf record -e io_uring:io_uring_submit_req` on the node: prints the load generator's MB/s and
# node CPU per GiB, then the io_uring submissions by opcode (docs/performance.md, "Proof that
# upload bodies do not pass through user space"). Needs `perf` (Debian: linux-perf).
#
#   benches/peers/splice-proof.sh true; benches/peers/splice-proof.sh false
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); BIN=$ROOT/target/release/upgate; ZC=${1:?zero_copy: true or false}
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
W=$ROOT/target/splice-proof-$ZC; rm -rf $W; mkdir -p $W/data
$BIN bench --serve-callbacks 127.0.0.1:0 > $W/cb.out 2>&1 & CBP=$!
for i in $(seq 50); do CB=$(grep -oE '127\.0\.0\.1:[0-9]+' $W/cb.out | head -1); [ -n "$CB" ] && break; sleep 0.1; done
cat > $W/n.toml <<EOT
listen = "127.0.0.1:0"
data_dir = "$W/data"
threads = 2
fsync = false
zero_copy = $ZC
callback_allow = ["$CB"]
log_level = "warn"
EOT
$BIN serve --config $W/n.toml > $W/n.out 2>&1 & NP=$!
for i in $(seq 50); do U=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' $W/n.out | head -1); [ -n "$U" ] && break; sleep 0.1; done
perf record -e io_uring:io_uring_submit_req -p $NP -o $W/perf.data > /dev/null 2>&1 & PP=$!
sleep 1
# Captured whole before it is read: a reader starting beside the upload takes CPU from it.
LINE=$($BIN bench --json --label proof-$ZC --target $U -c 1 -n 1 --size 1GiB --appid bench --callback-app $CB --register --watch-pid $NP 2>&1 | tail -1)
python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['label'], 'MB/s', d['mb_s'], 'cpu_s_per_gib', d.get('cpu_s_per_gib'), 'errors', d['errors'])" "$LINE"
sleep 0.5; kill -INT $PP; wait $PP 2>/dev/null
perf script -i $W/perf.data 2>/dev/null | grep -oE 'opcode [A-Z_]+' | sort | uniq -c | sort -rn
kill $NP $CBP; wait 2>/dev/null; rm -rf $W/data
