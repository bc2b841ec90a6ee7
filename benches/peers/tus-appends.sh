#!/bin/bash
# 1 GiB uploaded as tus appends of CHUNK (8 MiB) beside single raw uploads of 1 GiB, one
# connection each, alternating REPS times on one fresh node (tus twice: the app asked before
# every append, and an app answering valid_for_s) (fsync = false, zero_copy = true,
# pin_threads = true unless PIN_THREADS=false; BIN=another build),
# then one more tus upload under `perf record -e io_uring:io_uring_submit_req` to show the
# appends' io_uring opcodes (SPLICE for Content-Length appends). Prints MB/s and node CPU s/GiB
# per run (docs/performance.md, "Resumable appends beside a raw upload"). Needs `perf`.
# Memory held for the run (page-cache.sh).
#
#   benches/peers/tus-appends.sh            # REPS=3 CHUNK=8MiB SIZE=1GiB
#   LOG_LEVEL=info REPS=1 benches/peers/tus-appends.sh   # also where an append's time goes
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); BIN=${BIN:-$ROOT/target/release/upgate}
REPS=${REPS:-3}; CHUNK=${CHUNK:-8MiB}; SIZE=${SIZE:-1GiB}
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
W=$ROOT/target/tus-appends; rm -rf $W; mkdir -p $W/data
# shellcheck source=page-cache.sh
. "$ROOT/benches/peers/page-cache.sh"
trap release_memory EXIT
hold_memory
$BIN bench --serve-callbacks 127.0.0.1:0 > $W/cb.out 2>&1 & CBP=$!
for i in $(seq 50); do CB=$(grep -oE '127\.0\.0\.1:[0-9]+' $W/cb.out | head -1); [ -n "$CB" ] && break; sleep 0.1; done
cat > $W/n.toml <<EOT
listen = "127.0.0.1:0"
data_dir = "$W/data"
threads = 2
fsync = false
zero_copy = true
$([ "${PIN_THREADS:-true}" = false ] || echo "pin_threads = true")
callback_allow = ["$CB"]
log_level = "${LOG_LEVEL:-warn}"
EOT
$BIN serve --config $W/n.toml > $W/n.out 2>&1 & NP=$!
for i in $(seq 50); do U=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' $W/n.out | head -1); [ -n "$U" ] && break; sleep 0.1; done
# Before each upload, as benches/peers/run.sh does: the previous files deleted and a scratch file
# written and deleted, so every upload lands in recycled page-cache pages.
run() { # MODE LABEL [ARGS…]: raw uploads ask first (the patent's client); tus clients never do
  find $W/data/files $W/data/partial -type f -delete 2>/dev/null
  recycle_pages $W 1280
  # Captured whole before it is read: a reader starting beside the upload takes CPU from it.
  local line
  line=$($BIN bench --json --label $2 --target $U -c 1 -n 1 --size $SIZE --mode $1 --chunk-size $CHUNK \
    "${@:3}" --appid bench --callback-app $CB --register --watch-pid $NP 2>&1 | tail -1)
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['label'], 'MB/s', d['mb_s'], 'cpu_s_per_gib', d.get('cpu_s_per_gib'), 'errors', d['errors'])" "$line"
}
# tus-valid: the app answers its pre-callbacks with valid_for_s, so only the creation asks it.
for r in $(seq $REPS); do
  run upload raw-$r; run tus tus-$r --no-expect; run tus tus-valid-$r --no-expect --pre-valid-for 3600
done
perf record -e io_uring:io_uring_submit_req -p $NP -o $W/perf.data > /dev/null 2>&1 & PP=$!
sleep 1; run tus tus-perf --no-expect; sleep 0.5; kill -INT $PP; wait $PP 2>/dev/null
echo "io_uring submissions by opcode during one tus upload of $SIZE in $CHUNK appends:"
perf script -i $W/perf.data 2>/dev/null | grep -oE 'opcode [A-Z_]+' | sort | uniq -c | sort -rn
if [ "${LOG_LEVEL:-warn}" = info ]; then
  echo "per tus append asked of the app (access log, medians in ms): body, pre-callback, the rest:"
  grep 'method="PATCH"' $W/n.out | python3 -c '
import re, statistics as st, sys
rows = [dict(re.findall(r"(\w+)=([0-9.]+)", l)) for l in sys.stdin]
asked = [r for r in rows if "pre_callback_ms" in r]  # the valid_for_s runs skip the call
body = [float(r["body_ms"]) for r in asked]; pre = [float(r["pre_callback_ms"]) for r in asked]
rest = [float(r["duration_ms"]) - b - p for r, b, p in zip(asked, body, pre)]
print(len(asked), "asked appends: body", round(st.median(body), 3), "pre", round(st.median(pre), 3), "rest", round(st.median(rest), 3))'
fi
kill $NP $CBP; wait 2>/dev/null; rm -rf $W/data
