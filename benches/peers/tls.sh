#!/bin/bash
# The TLS benchmark table (issue "TLS termination"; docs/performance.md, "TLS against nginx"):
# upgate's tls_listen against nginx with `ssl`, on the same ECDSA P-256 certificate, in one run,
# the two servers alternating in every repetition, both with 2 threads / workers and the peers'
# config (benches/peers/nginx.conf: auth_request for the pre-callback, proxy_pass for the post).
# Every row is driven by the project's load generator (`upgate bench`, a rustls client; the
# same client for both servers), with the server's CPU from /proc (--watch-pid):
#   (t1) 1 GiB upload over HTTPS, 1 connection: MB/s, server CPU s per GiB
#   (t2) 1 KiB uploads over HTTPS, 64 keep-alive connections, pre + post callbacks: uploads/s
#   (t3) new TLS connections per second: a full handshake each (no resumption), GET, close
#   (t4) 1 GiB download over HTTPS, 1 connection: MB/s, server CPU s per GiB
# REPS (3) repetitions; SECS (10) seconds for t2 and t3; LARGE (1GiB) for t1 and t4; ROWS
# ("t1 t2 t3 t4") the rows to run.
# Output: one JSON line per run in $OUT (default target/tls-bench.jsonl), then the table.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${REPS:-3}
SECS=${SECS:-10}
LARGE=${LARGE:-1GiB}
ROWS=${ROWS:-t1 t2 t3 t4}
want() { [[ " $ROWS " == *" $1 "* ]]; }
OUT=${OUT:-$ROOT/target/tls-bench.jsonl}
(cd "$ROOT" && cargo build --release --quiet --bin upgate)
B=$ROOT/target/release/upgate
W=$(mktemp -d /tmp/upgate-tls-bench.XXXXXX)
mkdir -p "$W/nginx/body" "$W/nginx/proxy_temp" "$W/static/dl/big"
: >"$OUT"
cleanup() {
    kill "${UP:-}" "${CBP:-}" 2>/dev/null || true
    kill -QUIT "${NGP:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
wait_line() { for _ in $(seq 100); do grep -oE "$2" "$1" 2>/dev/null | head -1 && return; sleep 0.1; done; echo "no $2 in $1" >&2; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/key.pem" \
    -out "$W/cert.pem" -days 2 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
"$B" bench --serve-callbacks 127.0.0.1:0 >"$W/cb.out" 2>&1 & CBP=$!
CB=$(wait_line "$W/cb.out" '127\.0\.0\.1:[0-9]+')
cat >"$W/u.toml" <<E2
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
tls_cert = "$W/cert.pem"
tls_key = "$W/key.pem"
data_dir = "$W/udata"
threads = 2
fsync = false
callback_allow = ["$CB"]
log_level = "warn"
E2
"$B" serve --config "$W/u.toml" >"$W/u.out" 2>"$W/u.log" & UP=$!
US=$(wait_line "$W/u.out" 'https://127[0-9.:]+')
NP=$((20000 + RANDOM % 10000))
sed -e "s#@WORKERS@#2#g" -e "s#@PORT@#$NP#g" -e "s#@CBAPP@#$CB#g" -e "s#@DIR@#$W/nginx#g" \
    -e "s#@ROOT@#$W/static#g" -e "s#@APPID@#bench#g" -e "s#@DLAPPID@#dl#g" -e "s#@USER@#$(id -un)#g" \
    "$ROOT/benches/peers/nginx.conf" >"$W/nginx.conf"
sed -i "s#listen 127.0.0.1:$NP reuseport backlog=4096;#listen 127.0.0.1:$NP ssl reuseport backlog=4096;\n        ssl_certificate $W/cert.pem;\n        ssl_certificate_key $W/key.pem;\n        ssl_protocols TLSv1.2 TLSv1.3;#" "$W/nginx.conf"
nginx -p "$W/nginx/" -e "$W/nginx/error.log" -c "$W/nginx.conf" & NGP=$!
sleep 1
NGPIDS="$NGP$(for c in $(cat /proc/$NGP/task/*/children 2>/dev/null); do printf ',%s' "$c"; done)"
NS=https://127.0.0.1:$NP
echo "upgate $US (pid $UP), nginx $NS (pids $NGPIDS), callback app $CB; $(nproc) cores, $(uname -r)"

bench() { # LABEL ARGS...: one run, its JSON line into $OUT
    local label=$1; shift
    "$B" bench --json --label "$label" --cacert "$W/cert.pem" "$@" >>"$OUT" || true
}
# The files to download: upgate's uploaded through its own path, nginx's as a static file.
bench setup-upgate-dl --target "$US" --mode download -c 1 -n 0 --files 1 --size "$LARGE" --appid dl --path-prefix big --callback-app "$CB" --register
BYTES=$(grep '"label":"setup-upgate-dl"' "$OUT" | grep -oE '"size":[0-9]+' | cut -d: -f2)
head -c "$BYTES" /dev/zero | tr '\0' 'a' >"$W/static/dl/big/f0.bin"
bench setup-upgate-up --target "$US" -c 1 -n 1 --size 1k --appid bench --callback-app "$CB" --register

# Before each large upload: the previous uploads deleted, and a scratch file written and
# deleted, so that every upload lands in recycled page-cache pages (a busy node's steady state)
# rather than in fresh memory the VM must fault in from its host (run.sh does the same).
recycle_pages() {
    find "$W/udata/files/bench" "$W/nginx/body" -type f -delete 2>/dev/null || true
    dd if=/dev/zero of="$W/recycle.bin" bs=1M count=1280 status=none
    rm -f "$W/recycle.bin"
}
# One unmeasured round of the large rows for each server (first-touch page faults, caches).
bench warmup-t1-upgate --target "$US" -c 1 -n 1 --size "$LARGE" --appid bench
bench warmup-t1-nginx --target "$NS" -c 1 -n 1 --size "$LARGE" --appid bench
find "$W/udata/files/bench" "$W/nginx/body" -type f -delete 2>/dev/null || true

for r in $(seq "$REPS"); do
    for who in upgate nginx; do
        if [ $who = upgate ]; then t=$US; pids=$UP; else t=$NS; pids=$NGPIDS; fi
        want t1 && recycle_pages
        want t1 && bench "t1-$who-r$r" --target "$t" -c 1 -n 1 --size "$LARGE" --appid bench --watch-pid "$pids"
        find "$W/udata/files/bench" "$W/nginx/body" -type f -delete 2>/dev/null || true
        want t2 && bench "t2-$who-r$r" --target "$t" -c 64 -d "$SECS" --size 1k --appid bench --watch-pid "$pids"
        want t3 && bench "t3-$who-r$r" --target "$t" --mode connect -c 8 -d "$SECS" --watch-pid "$pids"
        want t4 && bench "t4-$who-r$r" --target "$t" --mode download -c 1 -n 1 --files 1 --size "$LARGE" --appid dl --path-prefix big --no-setup --watch-pid "$pids"
    done
done

# The table: medians of the repetitions.
python3 - "$OUT" "$REPS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def get(row, who, field):
    vals = [r.get(field) for r in runs if r["label"].startswith(f"{row}-{who}-r") and r.get("errors", 0) == 0]
    vals = [v for v in vals if v is not None]
    return vals
def med(v):
    return statistics.median(v) if v else float("nan")
def fmt(v, d=0):
    return ", ".join(f"{x:.{d}f}" for x in v)
rows = [("t1", "1 GiB upload over HTTPS, 1 conn", "mb_s", "MB/s", ">= 1.0x nginx", 1.0),
        ("t1", "", "cpu_s_per_gib", "server CPU s per GiB", "<= nginx", None),
        ("t2", "1 KiB uploads over HTTPS, 64 conns, pre+post callbacks", "rps", "uploads/s", ">= 1.5x nginx", 1.5),
        ("t3", "new TLS connections (full handshake, ECDSA P-256), GET, close", "rps", "connections/s", ">= 1.0x nginx", 1.0),
        ("t4", "1 GiB download over HTTPS, 1 conn", "mb_s", "MB/s", ">= 1.0x nginx", 1.0),
        ("t4", "", "cpu_s_per_gib", "server CPU s per GiB", "(information)", None)]
print("| scenario | metric | upgate (runs) | nginx (runs) | upgate / nginx (medians) | target |")
print("|---|---|---:|---:|---:|---|")
for row, name, field, metric, target, _ in rows:
    u, n = get(row, "upgate", field), get(row, "nginx", field)
    d = 2 if "cpu" in field else 0
    ratio = med(u) / med(n) if n and med(n) else float("nan")
    print(f"| {name} | {metric} | {fmt(u, d)} | {fmt(n, d)} | {ratio:.2f} | {target} |")
errs = [(r["label"], r["errors"], r.get("error_kinds")) for r in runs if r.get("errors")]
print("errors:", errs if errs else "none")
PY
