#!/bin/bash
# Raw uploads, tus uploads asked before every append, and tus uploads with valid_for_s, all of
# SIZE (1 GiB) on one connection, alternating REPS times on one node, once with the load
# generator as an ordinary thread and once under `chrt --idle 0` (SCHED_IDLE: any node thread
# that wakes takes the vCPU from it). Prints medians and the per-repetition tus / raw ratios
# for each (docs/performance.md, "Where the turnaround goes": how much of the tus gap is the
# load generator sharing the node's vCPUs). Memory held for the run (page-cache.sh).
#
#   REPS=10 benches/peers/tus-client-priority.sh          # PRIORITIES="normal idle"
set -eu
# shellcheck source=one-node.sh
. "$(dirname "${BASH_SOURCE[0]}")/one-node.sh"
REPS=${REPS:-4}; SIZE=${SIZE:-1GiB}; CHUNK=${CHUNK:-8MiB}; PRIORITIES=${PRIORITIES:-normal idle}
W=$ROOT/target/tus-client-priority; rm -rf "$W"
# shellcheck source=page-cache.sh
. "$(dirname "${BASH_SOURCE[0]}")/page-cache.sh"
one_node false 'zero_copy = true'
trap 'kill $NP $CBP 2>/dev/null; wait 2>/dev/null; release_memory' EXIT
hold_memory
run() { # PRIORITY LABEL MODE [ARGS…]; each upload in recycled page-cache pages (tus-appends.sh)
  local pre=() line
  [ "$1" = idle ] && pre=(chrt --idle 0)
  find "$W/data" -type f \( -path '*files*' -o -path '*partial*' \) -delete 2>/dev/null || true
  recycle_pages "$W" 1280
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
