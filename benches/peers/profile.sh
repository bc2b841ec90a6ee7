#!/bin/bash
# Where a small upload's CPU goes: one node (fsync FSYNC, default false) under the 1 KiB
# scenario (64 connections, SECS seconds, default 6), profiled with MODE:
#   perf    `perf record -g` of the node: share of samples by thread, then the top symbols
#   strace  `strace -c -f` of the node for 3 s: system calls by count
#   ops     `perf record -e io_uring:io_uring_submit_req`: io_uring submissions by opcode
# (docs/performance.md, "What each change bought" and "Where an upload's time goes now").
#
#   benches/peers/profile.sh perf; benches/peers/profile.sh strace; benches/peers/profile.sh ops
MODE=${1:?perf, strace or ops}
# shellcheck source=one-node.sh
source "$(dirname "${BASH_SOURCE[0]}")/one-node.sh"
one_node "${FSYNC:-false}"
SECS=${SECS:-6}
"$BIN" bench --target "$U" -c 64 -d 1 --size 1k --appid bench --callback-app "$CB" --register >/dev/null
case $MODE in
    perf) perf record -F 999 -g -p "$NP" -o "$W/perf.data" -- sleep $((SECS - 1)) >/dev/null 2>&1 & PP=$! ;;
    strace) timeout 3 strace -c -f -p "$NP" -o "$W/strace.txt" & PP=$! ;;
    ops) perf record -e io_uring:io_uring_submit_req -p "$NP" -o "$W/perf.data" -- sleep $((SECS - 1)) >/dev/null 2>&1 & PP=$! ;;
esac
"$BIN" bench --json --target "$U" -c 64 -d "$SECS" --size 1k --appid bench --callback-app "$CB" --register --watch-pid "$NP" | tail -1
wait "$PP"
case $MODE in
    perf)
        perf report -i "$W/perf.data" --no-children --sort comm -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -10
        perf report -i "$W/perf.data" --no-children --sort symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20 ;;
    strace) sort -k4 -n -r "$W/strace.txt" | head -15 ;;
    ops) perf script -i "$W/perf.data" 2>/dev/null | grep -oE 'opcode [A-Z_]+' | sort | uniq -c | sort -rn ;;
esac
kill "$NP" "$CBP"; wait 2>/dev/null
