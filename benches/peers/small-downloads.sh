#!/bin/bash
# 4 KiB downloads (64 files, 64 connections) from two upgate binaries, the second one also with
# its open-file cache off, and nginx, alternating round by round (docs/performance.md, "Open-file
# cache and small bodies in one write"). Prints one line per round: requests/s, p99, the
# server's CPU seconds and CPU µs per request. Needs nginx (Debian: nginx-light).
#
#   benches/peers/small-downloads.sh OLD_BINARY [NEW_BINARY]     # SECS=5 ROUNDS=3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OLD=${1:?an upgate binary to compare with, e.g. one built at an earlier commit}
NEW=${2:-$ROOT/target/release/upgate}
SECS=${SECS:-5}; ROUNDS=${ROUNDS:-3}
[ -x "$NEW" ] || (cd "$ROOT" && cargo build --release)
W=$ROOT/target/small-downloads; rm -rf "$W"; mkdir -p "$W"
wait_for() { local i; for ((i = 0; i < 100; i++)); do grep -oE "$2" "$1" 2>/dev/null | head -1 | grep . && return 0; sleep 0.1; done; return 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
"$NEW" bench --serve-callbacks 127.0.0.1:0 >"$W/cb.out" 2>&1 & CBP=$!
CB=$(wait_for "$W/cb.out" '127\.0\.0\.1:[0-9]+')
# node NAME BINARY [EXTRA TOML]: a node with its files uploaded through its own upload path.
node() {
    local d=$W/$1; mkdir -p "$d"
    printf 'listen = "127.0.0.1:0"\ndata_dir = "%s"\nthreads = 2\nfsync = false\ncallback_allow = ["%s"]\nlog_level = "warn"\n%s\n' \
        "$d" "$CB" "${3:-}" >"$d.toml"
    "$2" serve --config "$d.toml" >"$d.out" 2>&1 &
    echo $! >"$d.pid"
    wait_for "$d.out" 'http://127\.0\.0\.1:[0-9]+' >"$d.url"
    "$NEW" bench --target "$(cat "$d.url")" --mode download -c 16 -n 0 --files 64 --size 4k --appid dl \
        --path-prefix small --callback-app "$CB" --register >/dev/null
}
node old "$OLD"
node new "$NEW"
node new-nocache "$NEW" 'open_file_cache_ttl_ms = 0'
N=$W/nginx; mkdir -p "$N/body" "$N/proxy_temp" "$W/static/dl/small"
for k in $(seq 0 63); do head -c 4096 /dev/zero >"$W/static/dl/small/f$k.bin"; done
for ((i = 0; i < 100; i++)); do PORT=$((20000 + RANDOM % 12000)); listening $PORT || break; done
sed -e "s#@WORKERS@#2#g" -e "s#@PORT@#$PORT#g" -e "s#@CBAPP@#$CB#g" -e "s#@DIR@#$N#g" \
    -e "s#@ROOT@#$W/static#g" -e "s#@APPID@#bench#g" -e "s#@DLAPPID@#dl#g" -e "s#@USER@#$(id -un)#g" \
    "$ROOT/benches/peers/nginx.conf" >"$N/nginx.conf"
/usr/sbin/nginx -p "$N/" -e "$N/error.log" -c "$N/nginx.conf" >"$N/out" 2>&1 & NGP=$!
for ((i = 0; i < 100; i++)); do listening $PORT && break; sleep 0.05; done
sleep 0.3
WATCH=$NGP; for i in $(cat /proc/$NGP/task/*/children 2>/dev/null); do WATCH="$WATCH,$i"; done
echo "http://127.0.0.1:$PORT" >"$N.url"; echo "$WATCH" >"$N.pid"
DL=(--mode download -c 64 --files 64 --size 4k --appid dl --path-prefix small --no-setup)
for s in old new new-nocache nginx; do "$NEW" bench --target "$(cat "$W/$s.url")" "${DL[@]}" -d 1 >/dev/null; done
for r in $(seq 1 "$ROUNDS"); do
    for s in old new new-nocache nginx; do
        "$NEW" bench --json --label "$s-r$r" --target "$(cat "$W/$s.url")" "${DL[@]}" -d "$SECS" \
            --watch-pid "$(cat "$W/$s.pid")" | tee -a "$W/results.jsonl" | python3 -c "
import json, sys
d = json.loads(sys.stdin.read())
print(f\"{d['label']:16} {d['rps']:9.0f} req/s  p99 {d['p99_ms']:6.2f} ms  errors {d['errors']}  \"
      f\"cpu {d['cpu_s']:5.2f} s  {1e6 * d['cpu_s'] / max(d['ok'], 1):5.1f} us/req\")"
    done
done
for s in old new new-nocache; do kill "$(cat "$W/$s.pid")"; done
kill -QUIT $NGP; kill $CBP; wait 2>/dev/null
