#!/bin/bash
# What touching freed memory costs on this machine (docs/performance.md, "Traps met while
# measuring": the balloon's free-page reporting). Two parts, each with the balloon's
# min_free_ms as found and then held at 60 s (page-cache.sh):
#
# 1. a 1 GiB dd into a new file, WAITS seconds after 1280 MiB were written and deleted;
# 2. ROUNDS rounds of 3 raw uploads of 100 MiB on one node, each round after recycle_pages:
#    MB/s, node CPU s per GiB, and the kernel's page allocations, frees and faults during the
#    round (/proc/vmstat deltas), to tell work the kernel did from time the host took.
#
#   benches/peers/freed-pages.sh          # WAITS="0.1 0.3 0.6 1 2 4" ROUNDS=8
set -eu
# shellcheck source=one-node.sh
. "$(dirname "${BASH_SOURCE[0]}")/one-node.sh"
# shellcheck source=page-cache.sh
. "$(dirname "${BASH_SOURCE[0]}")/page-cache.sh"
WAITS=${WAITS:-0.1 0.3 0.6 1 2 4}; ROUNDS=${ROUNDS:-8}
W=$ROOT/target/freed-pages; rm -rf "$W"; mkdir -p "$W"
one_node false
trap 'kill $NP $CBP 2>/dev/null; wait 2>/dev/null; release_memory' EXIT
echo "min_free_ms as found: $(cat "$HOLD_KNOB" 2>/dev/null || echo absent)"
vm() { awk '$1 ~ /^(pgalloc_normal|pgfree|pgfault)$/ {printf "%s ", $2}' /proc/vmstat; }
for held in no yes; do
  [ $held = yes ] && hold_memory
  for x in $WAITS; do
    recycle_pages "$W" 1280; sleep "$x"
    t0=$(date +%s.%N); dd if=/dev/zero of="$W/t.bin" bs=1M count=1024 status=none; t1=$(date +%s.%N)
    rm -f "$W/t.bin"
    echo "held=$held dd 1 GiB, $x s after the free: $(awk "BEGIN {printf \"%.2f\", $t1 - $t0}") s"
  done
  for r in $(seq "$ROUNDS"); do
    find "$W/data" -path '*files*' -type f -delete
    recycle_pages "$W" 512
    a=($(vm))
    line=$("$BIN" bench --json --target "$U" -c 1 -n 3 --size 100MiB --appid bench --callback-app "$CB" \
      --register --watch-pid "$NP" 2>/dev/null | tail -1)
    b=($(vm))
    echo "held=$held round $r: $(echo "$line" | grep -oE '"mb_s":[0-9.]+|"cpu_s_per_gib":[0-9.]+' | tr '\n' ' ')" \
      "pages allocated $((b[0] - a[0])) freed $((b[1] - a[1])) faults $((b[2] - a[2]))"
  done
  release_memory
done
