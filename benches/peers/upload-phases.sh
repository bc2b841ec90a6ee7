#!/bin/bash
# Where a small upload's time goes: one node (fsync = false, 2 threads, log_level = info), the
# load generator's 1 KiB scenario (64 connections, SECS seconds), then the per-phase timings of
# every 201 from the node's access log (pre_callback_ms, body_ms, commit_ms, post_callback_ms),
# and this disk's fdatasync latency for 4 KiB writes beside them (docs/performance.md,
# "Small uploads").
#
#   benches/peers/upload-phases.sh            (SECS=5 by default; FSYNC=true for the synced level)
# shellcheck source=one-node.sh
source "$(dirname "${BASH_SOURCE[0]}")/one-node.sh"
W=$ROOT/target/upload-phases; rm -rf "$W"
LOG_LEVEL=info one_node "${FSYNC:-false}"
"$BIN" bench --json --target "$U" -c 64 -d "${SECS:-5}" --size 1k --appid bench --callback-app "$CB" --register --watch-pid "$NP" | tail -1
kill "$NP" "$CBP"; wait 2>/dev/null
python3 - "$W/n.out" "$W" <<'PY'
import os, re, statistics as st, sys, time
rows = [dict(re.findall(r'(\w+_ms)=([0-9.]+)', l)) for l in open(sys.argv[1]) if 'route="upload"' in l and 'status=201' in l]
print(len(rows), "uploads answered 201")
for k in ["duration_ms", "pre_callback_ms", "body_ms", "commit_ms", "post_callback_ms"]:
    v = sorted(float(r[k]) for r in rows if k in r)
    if v:
        print(f"{k:17} mean {st.mean(v):7.2f}  p50 {v[len(v)//2]:7.2f}  p99 {v[int(len(v)*.99)]:7.2f}")
path = os.path.join(sys.argv[2], "sync-test")
fd = os.open(path, os.O_WRONLY | os.O_CREAT)
ts = []
for _ in range(50):
    os.write(fd, b"x" * 4096)
    t = time.perf_counter(); os.fdatasync(fd); ts.append((time.perf_counter() - t) * 1000)
os.close(fd); os.unlink(path); ts.sort()
print(f"fdatasync of 4 KiB: p50 {ts[25]:.2f} ms, p90 {ts[45]:.2f} ms, max {ts[-1]:.2f} ms")
PY
