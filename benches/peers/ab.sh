#!/bin/bash
# Two builds of the node side by side in one run: BEFORE and AFTER (paths to `upgate` binaries,
# e.g. two commits built into different directories) each serve on their own fresh node
# (threads = 2, fsync = false, the same callback app), and the load generator alternates
# between them, REPS times, each MODE (raw `upload`, `form`) on each node, N uploads of SIZE
# on one connection per round, every round in recycled page-cache pages. Prints the median
# MB/s and node CPU s per GiB per node and mode, with each round's MB/s (docs/performance.md,
# "Forms beside raw uploads": the before/after of the spliced middle's check). Memory held for
# the run (page-cache.sh).
#
#   benches/peers/ab.sh BEFORE AFTER                 # REPS=6 N=3 SIZE=100MiB MODES="upload form"
#   MODES=tus SIZE=1GiB N=1 benches/peers/ab.sh A B  # any `upgate bench --mode`
#   PIN_THREADS=true benches/peers/ab.sh A B         # both nodes with pin_threads = true
#   C=2 N=4 benches/peers/ab.sh A B                  # C connections at once (default 1)
#   GEN=/path/to/upgate benches/peers/ab.sh A B      # load generator and callback app (default
#                                                    # AFTER's: its body pattern decides the bytes)
#   BEFORE_TOML="zero_copy = false" ab.sh A A        # one build, two configurations: extra TOML
#                                                    # lines for the BEFORE (or AFTER_TOML) node
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BEFORE=${1:?usage: ab.sh BEFORE AFTER}; AFTER=${2:?usage: ab.sh BEFORE AFTER}
GEN=${GEN:-$AFTER}
REPS=${REPS:-6}; N=${N:-3}; SIZE=${SIZE:-100MiB}; MODES=${MODES:-upload form}
W=$ROOT/target/ab; rm -rf "$W"; mkdir -p "$W"
"$GEN" bench --serve-callbacks 127.0.0.1:0 >"$W/cb.out" 2>&1 & CBP=$!
# shellcheck source=page-cache.sh
. "$ROOT/benches/peers/page-cache.sh"
PIDS=($CBP); trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; release_memory' EXIT
hold_memory
CB=
for _ in $(seq 50); do CB=$(grep -oE '127\.0\.0\.1:[0-9]+' "$W/cb.out" | head -1); [ -n "$CB" ] && break; sleep 0.1; done
start() { # NAME BIN: a node with its own data dir; NAME.url, NAME.pid
  mkdir -p "$W/$1"
  cat >"$W/$1.toml" <<EOT
listen = "127.0.0.1:0"
data_dir = "$W/$1"
threads = 2
fsync = false
$([ "${PIN_THREADS:-false}" = true ] && echo "pin_threads = true")
callback_allow = ["$CB"]
log_level = "warn"
$([ "$1" = before ] && echo "${BEFORE_TOML:-}" || echo "${AFTER_TOML:-}")
EOT
  "$2" serve --config "$W/$1.toml" >"$W/$1.out" 2>&1 & echo $! >"$W/$1.pid"; PIDS+=($!)
  for _ in $(seq 50); do grep -oE 'http://127\.0\.0\.1:[0-9]+' "$W/$1.out" >"$W/$1.url" && break; sleep 0.1; done
}
start before "$BEFORE"; start after "$AFTER"
for r in $(seq "$REPS"); do for n in before after; do for m in $MODES; do
  find "$W/before" "$W/after" -path '*files*' -type f -size +1M -delete
  recycle_pages "$W" 512
  # Captured whole before anything reads it: a reader starting beside the run takes CPU from it.
  line=$("$GEN" bench --json --label "$n-$m" --target "$(cat "$W/$n.url")" -c "${C:-1}" -n "$N" \
    --size "$SIZE" --mode "$m" --appid bench --callback-app "$CB" --register \
    --watch-pid "$(cat "$W/$n.pid")" 2>/dev/null | tail -1)
  echo "$line" >>"$W/rounds.jsonl"
done; done; done
python3 -c "
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l); print(d['label'], d['mb_s'], d.get('cpu_s_per_gib'), d['errors'])" "$W/rounds.jsonl" >"$W/rounds.txt"
python3 - "$W/rounds.txt" <<'PY'
import collections, statistics as st, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, mb, cpu, errors = line.split()
    rows[label].append((float(mb), float(cpu), int(errors)))
for label, v in sorted(rows.items()):
    print(f"{label:14} MB/s median {st.median(x[0] for x in v):6.0f}  CPU s/GiB median "
          f"{st.median(x[1] for x in v):.3f}  errors {sum(x[2] for x in v)}  rounds {[round(x[0]) for x in v]}")
PY
