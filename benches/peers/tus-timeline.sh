#!/bin/bash
# One tus upload of 1 GiB in 8 MiB appends (the app answering valid_for_s, so no callback),
# traced on every vCPU with perf: scheduler switches and wake-ups, io_uring submissions and
# completions. Prints, per append, how long the node's ring thread waited to run after the
# load generator's next head woke it, and on which vCPU (docs/performance.md, "Where the
# turnaround goes"). Needs perf and root. Memory held for the run (page-cache.sh).
# PIN_THREADS=true runs the node with pin_threads = true.
set -eu
# shellcheck source=one-node.sh
. "$(dirname "${BASH_SOURCE[0]}")/one-node.sh"
W=$ROOT/target/tus-timeline; rm -rf "$W"
# shellcheck source=page-cache.sh
. "$(dirname "${BASH_SOURCE[0]}")/page-cache.sh"
one_node false "zero_copy = true
pin_threads = ${PIN_THREADS:-false}"
trap 'kill $NP $CBP 2>/dev/null; wait 2>/dev/null; release_memory' EXIT
hold_memory
tus() { "$BIN" bench --json --target "$U" -c 1 -n 1 --size "$1" --mode tus --chunk-size 8MiB --no-expect \
  --pre-valid-for 3600 --appid bench --callback-app "$CB" --register --watch-pid "$NP" 2>/dev/null | tail -1; }
tus 64MiB >/dev/null
recycle_pages "$W" 1280
perf record -e sched:sched_switch,sched:sched_wakeup,sched:sched_migrate_task,io_uring:io_uring_submit_req,io_uring:io_uring_complete \
  -a -o "$W/perf.data" >/dev/null 2>&1 & PP=$!
sleep 1
line=$(tus 1GiB)
sleep 0.3; kill -INT $PP; wait $PP 2>/dev/null || true
echo "traced upload: $(echo "$line" | grep -oE '"mb_s":[0-9.]+')"
perf script -i "$W/perf.data" >"$W/trace.txt" 2>/dev/null
python3 - "$W/trace.txt" <<'PY'
import re, statistics as st, sys
ev = []
for l in open(sys.argv[1]):
    m = re.match(r'\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)', l)
    if m:
        ev.append((float(m.group(4)) * 1000, m.group(1), int(m.group(3)), m.group(5), m.group(6)))
ev.sort()
# Each 204 is a WRITE submitted by a ring thread; between two of them, one append.
answers = [i for i, e in enumerate(ev) if 'submit_req' in e[3] and 'opcode WRITE' in e[4] and 'upgate-uring' in e[1]]
waits, same, period, turn = [], 0, [], []
for a, b in zip(answers, answers[1:]):
    period.append(ev[b][0] - ev[a][0])
    # The turnaround: from the 204 to the next append's first splice into the file.
    first = next((j for j in range(a + 1, b) if 'submit_req' in ev[j][3] and 'opcode SPLICE' in ev[j][4]), None)
    if first is not None:
        turn.append(ev[first][0] - ev[a][0])
    woken = next((j for j in range(a + 1, b) if 'sched_wakeup' in ev[j][3]
                  and 'upgate-uring' in ev[j][4] and ev[j][1].startswith('bench')), None)
    if woken is None:
        continue
    target = int(re.search(r'target_cpu=(\d+)', ev[woken][4]).group(1))
    ran = next((j for j in range(woken + 1, b) if 'sched_switch' in ev[j][3]
                and re.search(r'next_comm=upgate-uring', ev[j][4])), None)
    if ran is None:
        continue
    waits.append(ev[ran][0] - ev[woken][0])
    same += target == ev[ran][2]
w = sorted(waits)
print(f"appends where the load generator's head woke the ring thread: {len(w)}")
print(f"ring thread ran after: median {st.median(w):.3f} ms, p10 {w[len(w)//10]:.3f}, p90 {w[9*len(w)//10]:.3f}")
print(f"woken onto the vCPU it then ran on (the load generator's): {same} of {len(w)}")
t = sorted(turn)
print(f"all {len(t)} appends, 204 to the next append's first splice: median {st.median(t):.3f} ms, p10 {t[len(t)//10]:.3f}, p90 {t[9*len(t)//10]:.3f}")
print(f"append period (204 to 204): median {st.median(period):.3f} ms")
PY
