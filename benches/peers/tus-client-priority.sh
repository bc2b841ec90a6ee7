#!/bin/bash
# Raw uploads, tus uploads asked before every append, and tus uploads with valid_for_s, all of
# SIZE (1 GiB) on one connection, alternating REPS times on one node, once with the load
# generator as an ordinary thread and once under `chrt --idle 0` (SCHED_IDLE: any node thread
# that wakes takes the vCPU from it). Prints medians and the per-repetition tus / raw ratios
# for each (docs/performance.md, "Where the turnaround goes": how much of the tus gap is the
# load generator sharing the node's vCPUs).
#
#   REPS=10 benches/peers/tus-client-priority.sh          # PRIORITIES="normal idle"
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); BIN=${BIN:-$ROOT/target/release/upgate}
REPS=${REPS:-4}; SIZE=${SIZE:-1GiB}; CHUNK=${CHUNK:-8MiB}; PRIORITIES=${PRIORITIES:-normal idle}
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
W=$ROOT/target/tus-client-priority; rm -rf "$W"; mkdir -p "$W/d"
"$BIN" bench --serve-callbacks 127.0.0.1:0 >"$W/cb.out" 2>&1 & CBP=$!
PIDS=($CBP); trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
CB=
for _ in $(seq 50); do CB=$(grep -oE '127\.0\.0\.1:[0-9]+' "$W/cb.out" | head -1); [ -n "$CB" ] && break; sleep 0.1; done
cat >"$W/n.toml" <<EOT
listen = "127.0.0.1:0"
data_dir = "$W/d"
threads = 2
fsync = false
zero_copy = true
callback_allow = ["$CB"]
log_level = "warn"
EOT
"$BIN" serve --config "$W/n.toml" >"$W/n.out" 2>&1 & NP=$!; PIDS+=($NP)
U=
for _ in $(seq 50); do U=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$W/n.out" | head -1); [ -n "$U" ] && break; sleep 0.1; done
run() { # PRIORITY LABEL MODE [ARGS…]; each upload in recycled page-cache pages (tus-appends.sh)
  local pre=() line
  [ "$1" = idle ] && pre=(chrt --idle 0)
  find "$W/d" -type f \( -path '*files*' -o -path '*partial*' \) -delete 2>/dev/null || true
  dd if=/dev/zero of="$W/recycle.bin" bs=1M count=1280 status=none; rm -f "$W/recycle.bin"
  # Captured whole before anything reads it: a reader starting beside the run takes CPU from it.
  line=$("${pre[@]}" "$BIN" bench --json --label "$1-$2" --target "$U" -c 1 -n 1 --size "$SIZE" --mode "$3" \
    --chunk-size "$CHUNK" "${@:4}" --appid bench --callback-app "$CB" --register --watch-pid "$NP" 2>/dev/null | tail -1)
  echo "$line" >>"$W/rounds.jsonl"
}
for _ in $(seq "$REPS"); do for p in $PRIORITIES; do
  run "$p" raw upload
  run "$p" tus tus --no-expect
  run "$p" tusvalid tus --no-expect --pre-valid-for 3600
done; done
python3 - "$W/rounds.jsonl" <<'PY'
import collections, json, statistics as st, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows[d['label']].append((d['mb_s'], d.get('cpu_s_per_gib') or 0.0, d['errors']))
for label, v in sorted(rows.items()):
    print(f"{label:16} MB/s median {st.median(x[0] for x in v):6.0f}  CPU s/GiB median "
          f"{st.median(x[1] for x in v):.2f}  errors {sum(x[2] for x in v)}  {[round(x[0]) for x in v]}")
for p in sorted({k.split('-')[0] for k in rows}):
    for m in ('tus', 'tusvalid'):
        r = [t[0] / raw[0] for t, raw in zip(rows[f'{p}-{m}'], rows[f'{p}-raw'])]
        print(f"{p}: {m} / raw, median of per-repetition ratios {st.median(r):.2f} {[round(x, 2) for x in r]}")
PY
