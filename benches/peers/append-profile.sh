#!/bin/bash
# Where the node's CPU goes for the same bytes as one raw upload and as tus appends: one node
# (threads = 2, fsync = false, zero_copy = true, pin_threads = true unless PIN_THREADS=false), `perf record
# -F 4999 -g` of it while it takes 3 raw uploads of 1 GiB, then (a second node, same settings)
# 3 tus uploads of 1 GiB in 8 MiB appends with an app answering valid_for_s. Prints each run's
# MB/s, the samples per thread kind (ring threads, io-wq workers), and the kernel and user
# symbols of the io-wq workers with the most samples more under tus than raw
# (docs/performance.md, "Resumable appends beside a raw upload": what the append's reservation
# removed). Needs perf and root. Memory held for the run (page-cache.sh).
#
# With VS=form the second node takes 3 forms of 1 GiB instead (upgate bench --mode form), and
# the symbols listed are those of every thread of the node ("Forms of random bytes": where the
# form's in-place check goes).
#
#   benches/peers/append-profile.sh
#   VS=form benches/peers/append-profile.sh
#   PIN_THREADS=false BIN_OVERRIDE=/path/to/other/upgate benches/peers/append-profile.sh
#   (another build, unpinned: without the pin_threads line, which builds before it refuse)
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/one-node.sh"
BIN=${BIN_OVERRIDE:-$BIN}
# shellcheck source=page-cache.sh
. "$(dirname "${BASH_SOURCE[0]}")/page-cache.sh"
OUT=$ROOT/target/append-profile; rm -rf "$OUT"; mkdir -p "$OUT"
trap 'kill ${NP:-} ${CBP:-} 2>/dev/null || true; wait 2>/dev/null || true; release_memory' EXIT
hold_memory
profile() { # MODE LABEL [ARGS…]
  W=$OUT/$2; mkdir -p "$W"
  local pin="pin_threads = true"
  [ "${PIN_THREADS:-true}" = false ] && pin=""
  one_node false "zero_copy = true
$pin"
  up() { "$BIN" bench --json --target "$U" -c 1 -n 1 --size 1GiB --mode "$1" "${@:2}" \
    --appid bench --callback-app "$CB" --register --watch-pid "$NP" 2>/dev/null | tail -1; }
  up "$1" "${@:3}" >/dev/null
  recycle_pages "$W" 1280
  perf record -F 4999 -g -p "$NP" -o "$W/perf.data" >/dev/null 2>&1 & PP=$!
  sleep 0.5
  for _ in 1 2 3; do
    find "$W/data/files" "$W/data/partial" -type f -delete 2>/dev/null || true
    line=$(up "$1" "${@:3}")
    echo "$2 $(echo "$line" | grep -oE '"mb_s":[0-9.]+')"
  done
  kill -INT $PP; wait $PP 2>/dev/null || true
  kill "$NP" "$CBP"; wait "$NP" "$CBP" 2>/dev/null || true
  perf report -i "$W/perf.data" --no-children --sort comm,sym --stdio -n 2>/dev/null |
    grep -E '^ +[0-9]' >"$W/samples.txt"
}
VS=${VS:-tus}
profile upload raw
case $VS in
    tus) profile tus tus --chunk-size 8MiB --no-expect --pre-valid-for 3600 ;;
    form) profile form form ;;
    *) echo "VS is tus or form" >&2; exit 2 ;;
esac
python3 - "$OUT/raw/samples.txt" "$OUT/$VS/samples.txt" "$VS" <<'PY'
import collections, re, sys
def load(path):
    kinds, wrk = collections.Counter(), collections.Counter()
    for line in open(path):
        m = re.match(r'\s*[\d.]+%\s+(\d+)\s+(.+?)\s+\[[k.]\]\s+(.*)$', line)
        if not m:
            continue
        n, comm, sym = int(m.group(1)), m.group(2), m.group(3).strip()
        kind = re.sub(r'-\d+$', '', comm)
        kinds[kind] += n
        if kind == 'iou-wrk' or vs == 'form':
            wrk[sym] += n
    return kinds, wrk
vs = sys.argv[3]
(rk, rw), (tk, tw) = load(sys.argv[1]), load(sys.argv[2])
print(f"samples for 3 GiB (perf -F 4999), by thread kind: raw / {vs}")
for kind in ('upgate-uring', 'iou-wrk'):
    print(f"  {kind:14s} {rk[kind]:6d} / {tk[kind]:6d}")
print(f"  {'all':14s} {sum(rk.values()):6d} / {sum(tk.values()):6d}")
who = "the node's" if vs == 'form' else "io-wq workers'"
print(f"{who} symbols with the most samples more under {vs} (raw, {vs}):")
for sym in sorted(set(rw) | set(tw), key=lambda s: rw[s] - tw[s])[:12]:
    print(f"  {sym:45s} {rw[sym]:5d} {tw[sym]:5d}")
PY
