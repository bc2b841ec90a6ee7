#!/usr/bin/env bash
# upgate against nginx on this machine, in one run, under the same load generator
# (`upgate bench`), next to the machine's own limits (loopback TCP, page-cache writes).
#
#   benches/peers/run.sh          (or: make bench-peers)
#
# Writes $OUT/results.md (the table, the commands, the raw JSON lines), $OUT/results.jsonl and
# $OUT/run.log; OUT defaults to target/peers. Everything listens on 127.0.0.1 only. Each server
# gets a fresh data directory (see facts.md: creation slows down right after mass deletion), and
# the work directory is deleted only at the end (KEEP_WORK=1 keeps it).
#
# Knobs (environment): THREADS (2: upgate threads = nginx workers), SMALL_SECS (10),
# SMALL_CONNS (64), ROUNDS (3), LARGE_SIZE (1GiB), LARGE_REPS (3), DL_SECS (10),
# IPERF_SECS (8), DD_MIB (2048), COOLDOWN (300), KEEP_WORK, FORM_SIZE (100MiB), FORM_REPS (5),
# SCENARIOS ("a b c f": which of the scenarios below to run; the table shows n/a for the others),
# PIN_THREADS (false; true: upgate with pin_threads = true and nginx with worker_cpu_affinity
# auto, each worker kept on a CPU of its own).
set -eu

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/target/peers}
THREADS=${THREADS:-2}
SMALL_SECS=${SMALL_SECS:-10}
SMALL_CONNS=${SMALL_CONNS:-64}
ROUNDS=${ROUNDS:-3}
LARGE_SIZE=${LARGE_SIZE:-1GiB}
LARGE_REPS=${LARGE_REPS:-3}
DL_SECS=${DL_SECS:-10}
IPERF_SECS=${IPERF_SECS:-8}
DD_MIB=${DD_MIB:-2048}
FORM_SIZE=${FORM_SIZE:-100MiB}
FORM_REPS=${FORM_REPS:-5}
SCENARIOS=${SCENARIOS:-a b c f}
PIN_THREADS=${PIN_THREADS:-false}
PIN_TOML=; PIN_NGINX=
if [ "$PIN_THREADS" = true ]; then PIN_TOML="pin_threads = true"; PIN_NGINX="worker_cpu_affinity auto;"; fi
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

mkdir -p "$OUT"
# ext4 skips inodes freed in the last 5 s, or 5 min while their inode table block is dirty
# (`recently_deleted`), so file creation crawls after a mass deletion such as the previous
# run's cleanup. Wait that out (COOLDOWN=0 skips).
COOLDOWN=${COOLDOWN:-300}
if [ -f "$OUT/.cleaned" ]; then
    since=$(($(date +%s) - $(cat "$OUT/.cleaned")))
    if [ "$since" -lt "$COOLDOWN" ]; then
        echo "waiting $((COOLDOWN - since)) s: the previous run deleted its files $since s ago" >&2
        sleep $((COOLDOWN - since))
    fi
fi
WORK=$(mktemp -d "$OUT/work.XXXXXX")
RAW=$OUT/results.jsonl
LOG=$OUT/run.log
: >"$RAW"
: >"$LOG"
STARTED=$(date +%s)
STARTED_AT=$(date -u '+%Y-%m-%d %H:%M UTC')

say() { printf '%s\n' "$*" | tee -a "$LOG" >&2; }

# Stops what this script started and is still running (its own background jobs, by pid).
cleanup() {
    local p
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -z "${KEEP_WORK:-}" ]; then
        rm -rf "$WORK"
        date +%s >"$OUT/.cleaned"
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- tools
install_pkgs() {
    say "installing $* (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >>"$LOG" 2>&1 ||
        { apt-get update -q >>"$LOG" 2>&1 && apt-get install -y -q "$@" >>"$LOG" 2>&1; }
}
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX_BIN" ]; then
    install_pkgs nginx-light || install_pkgs nginx
    NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
fi
command -v iperf3 >/dev/null || install_pkgs iperf3

say "building: cargo build --release"
cargo build --release >>"$LOG" 2>&1
# A private copy: others may rebuild target/release while this runs.
BIN=$WORK/upgate
cp "$ROOT/target/release/upgate" "$BIN"

# ---------------------------------------------------------------- helpers
# wait_line FILE REGEX: prints the first match once FILE has one (20 s at most).
wait_line() {
    local i
    for ((i = 0; i < 400; i++)); do
        if grep -qE "$2" "$1" 2>/dev/null; then
            grep -oE "$2" "$1" | head -1
            return 0
        fi
        sleep 0.05
    done
    say "timed out waiting for /$2/ in $1:"
    cat "$1" >&2
    return 1
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a port nobody listens on, below the ephemeral range (32768-) so that no outgoing
# connection holds it either.
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        if ! listening "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# jget FIELD JSON: a scalar field of one of our flat JSON lines.
jget() { grep -oE "\"$1\":(\"[^\"]*\"|[^,}]*)" <<<"$2" | head -1 | cut -d: -f2- | tr -d '"'; }

# median of the arguments ("n/a" when none).
median() {
    printf '%s\n' "$@" | grep -E '^[0-9.eE+-]+$' | sort -g |
        awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# vals LABEL_PREFIX FIELD: FIELD of every raw line whose label starts with LABEL_PREFIX.
vals() { grep -E "\"label\":\"$1" "$RAW" | while read -r l; do jget "$2" "$l"; done; }
maxval() { printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | tail -1; }

# calc EXPR: floating point arithmetic.
calc() { awk "BEGIN {x = $1; printf \"%.${2:-1}f\", x}"; }

# bench LABEL ARGS...: one load-generator run; its JSON line goes to results.jsonl.
COMMANDS=()
bench() {
    local label=$1 line
    shift
    COMMANDS+=("upgate bench --json --label $label $*")
    line=$("$BIN" bench --json --label "$label" "$@" 2>>"$LOG") || true
    [ -n "$line" ] || line="{\"label\":\"$label\",\"failed\":true}"
    echo "$line" >>"$RAW"
    say "  $line"
}

# ---------------------------------------------------------------- servers
"$BIN" bench --serve-callbacks 127.0.0.1:0 >"$WORK/cbapp.out" 2>&1 &
CB=$(wait_line "$WORK/cbapp.out" '127\.0\.0\.1:[0-9]+')
say "callback app on $CB"

# start_upgate NAME FSYNC [TOML]: a node with a fresh data dir (TOML: more config lines);
# sets UPGATE (URL) and UPGATE_PID.
start_upgate() {
    local dir=$WORK/upgate-$1
    mkdir -p "$dir"
    cat >"$dir.toml" <<EOF
listen = "127.0.0.1:0"
data_dir = "$dir"
threads = $THREADS
fsync = $2
callback_allow = ["$CB"]
log_level = "warn"
$PIN_TOML
${3:-}
EOF
    "$BIN" serve --config "$dir.toml" >"$dir.out" 2>&1 &
    UPGATE_PID=$!
    UPGATE=$(wait_line "$dir.out" 'http://127\.0\.0\.1:[0-9]+')
}
stop_upgate() {
    kill "$UPGATE_PID" 2>/dev/null || true
    wait "$UPGATE_PID" 2>/dev/null || true
}

STATIC=$WORK/static
# start_nginx NAME: nginx with fresh temp dirs; sets NGINX (URL), NGINX_PID, NGINX_WATCH.
start_nginx() {
    local dir=$WORK/nginx-$1 port i try
    mkdir -p "$dir/body" "$dir/proxy_temp" "$STATIC"
    for try in 1 2 3; do
        port=$(free_port)
        sed -e "s#@WORKERS@#$THREADS#g" -e "s#@PORT@#$port#g" -e "s#@CBAPP@#$CB#g" \
            -e "s#@DIR@#$dir#g" -e "s#@ROOT@#$STATIC#g" -e "s#@APPID@#bench#g" \
            -e "s#@DLAPPID@#dl#g" -e "s#@USER@#$(id -un)#g" \
            -e "s#^worker_processes .*#&\n$PIN_NGINX#" \
            "$ROOT/benches/peers/nginx.conf" >"$dir/nginx.conf"
        "$NGINX_BIN" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/out" 2>&1 &
        NGINX_PID=$!
        for ((i = 0; i < 200; i++)); do
            listening "$port" && break
            kill -0 "$NGINX_PID" 2>/dev/null || break
            sleep 0.05
        done
        listening "$port" && break
        say "nginx did not start (try $try):"
        cat "$dir/out" >&2
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        [ "$try" != 3 ] || exit 1
    done
    sleep 0.2
    NGINX_WATCH=$NGINX_PID
    for i in $(cat /proc/"$NGINX_PID"/task/*/children 2>/dev/null); do NGINX_WATCH="$NGINX_WATCH,$i"; done
    NGINX=http://127.0.0.1:$port
}
stop_nginx() {
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
}

# ---------------------------------------------------------------- machine limits
say "== limits: loopback TCP (iperf3 -t $IPERF_SECS), page-cache writes (dd ${DD_MIB} MiB)"
IPORT=$(free_port)
iperf3 -s -1 -p "$IPORT" >"$WORK/iperf-server.out" 2>&1 &
sleep 0.3
iperf3 -c 127.0.0.1 -p "$IPORT" -t "$IPERF_SECS" -f m >"$WORK/iperf.out" 2>&1 || true
cat "$WORK/iperf.out" >>"$LOG"
TCP_MBPS=$(awk '/receiver/ {for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") v = $(i-1)} END {if (v != "") printf "%.0f", v / 8}' "$WORK/iperf.out")
TCP_MBPS=${TCP_MBPS:-0}
say "  loopback TCP: $TCP_MBPS MB/s"

# dd_rate ARGS...: MB/s (10^6) of one dd run.
dd_rate() {
    dd if=/dev/zero of="$WORK/dd.bin" bs=1M count="$DD_MIB" "$@" 2>&1 | tee -a "$LOG" |
        awk '/copied/ {for (i = 1; i <= NF; i++) if ($i == "s," || $i == "s") s = $(i-1); printf "%.0f", $1 / s / 1e6}'
    rm -f "$WORK/dd.bin"
}
DD_RUNS=()
for r in 1 2 3; do DD_RUNS+=("$(dd_rate)"); done
# The first run lands in memory the VM must fault in from the host; the repeats reuse the
# pages the previous run freed, as a server whose page cache is full and recycled does.
DD_FIRST=${DD_RUNS[0]}
PAGECACHE_MBPS=$(calc "$(median "${DD_RUNS[@]:1}")" 0)
DD_SYNC_MBPS=$(dd_rate conv=fdatasync)
say "  page cache write: ${DD_RUNS[*]} MB/s (first $DD_FIRST, repeats $PAGECACHE_MBPS); with conv=fdatasync: $DD_SYNC_MBPS MB/s"

# ---------------------------------------------------------------- (a) small uploads
if want a; then
say "== (a) 1 KiB uploads, $SMALL_CONNS connections, pre+post callbacks, ${SMALL_SECS} s x $ROUNDS rounds"
SMALL=(-c "$SMALL_CONNS" -d "$SMALL_SECS" --size 1k --appid bench)
# Each round: upgate (fsync = false), nginx, upgate (fsync = true), each on a fresh server.
for r in $(seq 1 "$ROUNDS"); do
    start_upgate "small-$r" false
    bench "warmup-a-upgate-r$r" --target "$UPGATE" -c "$SMALL_CONNS" -d 1 --size 1k --appid bench --callback-app "$CB" --register
    bench "a-upgate-r$r" --target "$UPGATE" "${SMALL[@]}" --callback-app "$CB" --register --watch-pid "$UPGATE_PID"
    stop_upgate
    start_nginx "small-$r"
    bench "warmup-a-nginx-r$r" --target "$NGINX" -c "$SMALL_CONNS" -d 1 --size 1k --appid bench
    bench "a-nginx-r$r" --target "$NGINX" "${SMALL[@]}" --watch-pid "$NGINX_WATCH"
    stop_nginx
    start_upgate "small-fsync-$r" true
    bench "warmup-a-upgate-fsync-r$r" --target "$UPGATE" -c "$SMALL_CONNS" -d 1 --size 1k --appid bench --callback-app "$CB" --register
    bench "a-upgate-fsync-r$r" --target "$UPGATE" "${SMALL[@]}" --callback-app "$CB" --register --watch-pid "$UPGATE_PID"
    stop_upgate
done
# A variant, one round, for information.
start_upgate small-carried false
bench "a-upgate-carried-r1" --target "$UPGATE" "${SMALL[@]}" --callback-app "$CB" --watch-pid "$UPGATE_PID"
stop_upgate
fi

# ---------------------------------------------------------------- (b) large upload
if want b; then
say "== (b) $LARGE_SIZE upload, 1 connection, $LARGE_REPS repetitions (upgate fsync = false)"
start_upgate large false
start_nginx large
# Before each upload: delete the previous ones and write and delete a scratch file, so that
# every upload lands in recycled page-cache pages (the steady state of a busy node) instead of
# fresh memory the VM must fault in (see the two page-cache figures).
recycle_pages() {
    find "$WORK/upgate-large/files" "$WORK/nginx-large/body" -type f -delete 2>/dev/null || true
    dd if=/dev/zero of="$WORK/recycle.bin" bs=1M count=1280 status=none
    rm -f "$WORK/recycle.bin"
}
large_upgate() {
    recycle_pages
    bench "b-upgate-r$1" --target "$UPGATE" -c 1 -n 1 --size "$LARGE_SIZE" --appid bench --callback-app "$CB" --register --watch-pid "$UPGATE_PID"
}
large_nginx() {
    recycle_pages
    bench "b-nginx-r$1" --target "$NGINX" -c 1 -n 1 --size "$LARGE_SIZE" --appid bench --watch-pid "$NGINX_WATCH"
}
for r in $(seq 1 "$LARGE_REPS"); do
    if [ $((r % 2)) = 1 ]; then
        large_upgate "$r"
        large_nginx "$r"
    else
        large_nginx "$r"
        large_upgate "$r"
    fi
done
stop_upgate
stop_nginx
# For information: the same node with bodies copied through user space (zero_copy = false).
start_upgate large-copy false "zero_copy = false"
for r in $(seq 1 "$LARGE_REPS"); do
    find "$WORK/upgate-large-copy/files" -type f -delete 2>/dev/null || true
    dd if=/dev/zero of="$WORK/recycle.bin" bs=1M count=1280 status=none
    rm -f "$WORK/recycle.bin"
    bench "b-upgate-copy-r$r" --target "$UPGATE" -c 1 -n 1 --size "$LARGE_SIZE" --appid bench --callback-app "$CB" --register --watch-pid "$UPGATE_PID"
done
stop_upgate
fi

# ---------------------------------------------------------------- (c) downloads
if want c; then
say "== (c) downloads: $LARGE_SIZE x 1 connection, 4 KiB x $SMALL_CONNS connections"
start_upgate dl false
start_nginx dl
# The same files on both: upgate's through its own upload path, nginx's as static files.
bench "setup-c-upgate-big" --target "$UPGATE" --mode download -c 1 -n 0 --files 1 --size "$LARGE_SIZE" --appid dl --path-prefix big --callback-app "$CB" --register
bench "setup-c-upgate-small" --target "$UPGATE" --mode download -c 16 -n 0 --files 64 --size 4k --appid dl --path-prefix small --callback-app "$CB" --register
mkdir -p "$STATIC/dl/big" "$STATIC/dl/small"
LARGE_BYTES=$(jget size "$(grep '"label":"setup-c-upgate-big"' "$RAW")")
head -c "$LARGE_BYTES" /dev/zero >"$STATIC/dl/big/f0.bin"
for k in $(seq 0 63); do head -c 4096 /dev/zero >"$STATIC/dl/small/f$k.bin"; done
DL_BIG=(--mode download -c 1 -n 1 --files 1 --size "$LARGE_SIZE" --appid dl --path-prefix big --no-setup)
DL_SMALL=(--mode download -c "$SMALL_CONNS" -d "$DL_SECS" --files 64 --size 4k --appid dl --path-prefix small --no-setup)
bench "warmup-c1-upgate" --target "$UPGATE" "${DL_BIG[@]}"
bench "warmup-c1-nginx" --target "$NGINX" "${DL_BIG[@]}"
for r in $(seq 1 "$LARGE_REPS"); do
    bench "c1-upgate-r$r" --target "$UPGATE" "${DL_BIG[@]}" --watch-pid "$UPGATE_PID"
    bench "c1-nginx-r$r" --target "$NGINX" "${DL_BIG[@]}" --watch-pid "$NGINX_WATCH"
done
for r in $(seq 1 "$ROUNDS"); do
    bench "c4-upgate-r$r" --target "$UPGATE" "${DL_SMALL[@]}" --watch-pid "$UPGATE_PID"
    bench "c4-nginx-r$r" --target "$NGINX" "${DL_SMALL[@]}" --watch-pid "$NGINX_WATCH"
done
stop_upgate
stop_nginx
fi

# ---------------------------------------------------------------- (f) forms
if want f; then
say "== (f) form uploads (multipart/form-data) beside raw uploads: 1 KiB x $SMALL_CONNS conns, $FORM_SIZE x 1 conn"
start_upgate form false
start_nginx form
# 1 KiB: raw and form on the same node, nginx storing the same form whole; rounds alternate.
bench "warmup-f1-upgate" --target "$UPGATE" -c "$SMALL_CONNS" -d 1 --size 1k --appid bench --callback-app "$CB" --register
bench "warmup-f1-nginx" --target "$NGINX" --mode form -c "$SMALL_CONNS" -d 1 --size 1k --appid bench
for r in $(seq 1 "$ROUNDS"); do
    bench "f1-raw-upgate-r$r" --target "$UPGATE" -c "$SMALL_CONNS" -d "$SMALL_SECS" --size 1k --appid bench --callback-app "$CB" --register --watch-pid "$UPGATE_PID"
    bench "f1-form-upgate-r$r" --target "$UPGATE" --mode form -c "$SMALL_CONNS" -d "$SMALL_SECS" --size 1k --appid bench --callback-app "$CB" --register --watch-pid "$UPGATE_PID"
    bench "f1-form-nginx-r$r" --target "$NGINX" --mode form -c "$SMALL_CONNS" -d "$SMALL_SECS" --size 1k --appid bench --watch-pid "$NGINX_WATCH"
done
# Large: 3 uploads per repetition, each kind in recycled page-cache pages (as in (b)).
recycle_form() {
    find "$WORK/upgate-form/files" "$WORK/nginx-form/body" -type f -size +1M -delete 2>/dev/null || true
    dd if=/dev/zero of="$WORK/recycle.bin" bs=1M count=512 status=none
    rm -f "$WORK/recycle.bin"
}
for r in $(seq 1 "$FORM_REPS"); do
    recycle_form
    bench "fl-raw-upgate-r$r" --target "$UPGATE" -c 1 -n 3 --size "$FORM_SIZE" --appid bench --callback-app "$CB" --register --watch-pid "$UPGATE_PID"
    recycle_form
    bench "fl-form-upgate-r$r" --target "$UPGATE" --mode form -c 1 -n 3 --size "$FORM_SIZE" --appid bench --callback-app "$CB" --register --watch-pid "$UPGATE_PID"
    recycle_form
    bench "fl-form-nginx-r$r" --target "$NGINX" --mode form -c 1 -n 3 --size "$FORM_SIZE" --appid bench --watch-pid "$NGINX_WATCH"
done
stop_upgate
stop_nginx
fi

# ---------------------------------------------------------------- report
# rnd DECIMALS VALUE: VALUE rounded ("n/a" stays).
rnd() { if [ "$2" = "n/a" ] || [ -z "$2" ]; then echo "n/a"; else calc "$2" "$1"; fi; }
# med PREFIX FIELD [DECIMALS]: the median over rounds; range: "[min-max]".
med() { rnd "${3:-0}" "$(median $(vals "$1" "$2"))"; }
range() {
    local lo hi
    lo=$(vals "$1" "$2" | sort -g | head -1)
    hi=$(vals "$1" "$2" | sort -g | tail -1)
    if [ -z "$lo" ]; then echo "[n/a]"; else echo "[$(rnd "${3:-0}" "$lo")-$(rnd "${3:-0}" "$hi")]"; fi
}
ratio() { if [ "$2" = "n/a" ] || [ "$1" = "n/a" ] || [ "$(calc "$2 == 0")" = "1.0" ]; then echo "n/a"; else calc "$1 / $2" 2; fi; }
yes_no() { case "$1" in *n/a*) echo "n/a"; return ;; esac; if [ "$(calc "($1) ? 1 : 0" 0)" = "1" ]; then echo "**yes**"; else echo "**no**"; fi; }
# cpu_ms PREFIX: per round, server CPU milliseconds per request (cpu_s * 1000 / ok).
cpu_ms() {
    grep -E "\"label\":\"$1" "$RAW" | while read -r l; do
        local c o
        c=$(jget cpu_s "$l"); o=$(jget ok "$l")
        [ -n "$c" ] && [ -n "$o" ] && [ "$o" != 0 ] && calc "$c * 1000 / $o" 4
    done
}
medcpu() { rnd 3 "$(median $(cpu_ms "$1"))"; }
errs() { local s=0 v; for v in $(vals "$1" errors); do s=$((s + v)); done; echo "$s"; }

A_UP=$(med a-upgate-r rps);        A_NG=$(med a-nginx-r rps)
A_UP99=$(med a-upgate-r p99_ms 1);   A_NG99=$(med a-nginx-r p99_ms 1)
A_UP50=$(med a-upgate-r p50_ms 1);   A_NG50=$(med a-nginx-r p50_ms 1)
A_UPRSS=$(maxval $(vals a-upgate-r hwm_kib)); A_NGRSS=$(maxval $(vals a-nginx-r hwm_kib))
A_UPSAMP=$(maxval $(vals a-upgate-r rss_peak_kib))
A_UPCPU=$(med a-upgate-r cpu_s 2);   A_NGCPU=$(med a-nginx-r cpu_s 2)
A_FS=$(med a-upgate-fsync-r rps);  A_FS99=$(med a-upgate-fsync-r p99_ms 1)
A_UPMS=$(medcpu a-upgate-r);        A_NGMS=$(medcpu a-nginx-r); A_FSMS=$(medcpu a-upgate-fsync-r)
C4_UPMS=$(medcpu c4-upgate-r);      C4_NGMS=$(medcpu c4-nginx-r)
A_CA=$(med a-upgate-carried-r rps); A_CA99=$(med a-upgate-carried-r p99_ms 1)
B_UP=$(med b-upgate-r mb_s);       B_NG=$(med b-nginx-r mb_s)
B_UPCPU=$(med b-upgate-r cpu_s_per_gib 2); B_NGCPU=$(med b-nginx-r cpu_s_per_gib 2)
B_CP=$(med b-upgate-copy-r mb_s);  B_CPCPU=$(med b-upgate-copy-r cpu_s_per_gib 2)
C1_UP=$(med c1-upgate-r mb_s);     C1_NG=$(med c1-nginx-r mb_s)
C1_UPCPU=$(med c1-upgate-r cpu_s_per_gib 2); C1_NGCPU=$(med c1-nginx-r cpu_s_per_gib 2)
C4_UP=$(med c4-upgate-r rps);      C4_NG=$(med c4-nginx-r rps)
C4_UP99=$(med c4-upgate-r p99_ms 1); C4_NG99=$(med c4-nginx-r p99_ms 1)
F1_RAW=$(med f1-raw-upgate-r rps);  F1_FORM=$(med f1-form-upgate-r rps); F1_NG=$(med f1-form-nginx-r rps)
F1_RAWMS=$(medcpu f1-raw-upgate-r); F1_FORMMS=$(medcpu f1-form-upgate-r); F1_NGMS=$(medcpu f1-form-nginx-r)
F1_FORM99=$(med f1-form-upgate-r p99_ms 1); F1_NG99=$(med f1-form-nginx-r p99_ms 1)
FL_RAW=$(med fl-raw-upgate-r mb_s); FL_FORM=$(med fl-form-upgate-r mb_s); FL_NG=$(med fl-form-nginx-r mb_s)
FL_RAWCPU=$(med fl-raw-upgate-r cpu_s_per_gib 2); FL_FORMCPU=$(med fl-form-upgate-r cpu_s_per_gib 2)
FL_NGCPU=$(med fl-form-nginx-r cpu_s_per_gib 2)
# Per repetition, form / raw (the two ran back to back): the median of those ratios.
fl_ratios() {
    local r raw form
    for r in $(seq 1 "$FORM_REPS"); do
        raw=$(vals "fl-raw-upgate-r$r\"" mb_s); form=$(vals "fl-form-upgate-r$r\"" mb_s)
        [ -n "$raw" ] && [ -n "$form" ] && calc "$form / $raw" 3
        echo
    done
}
FL_RATIO=$(rnd 2 "$(median $(fl_ratios))")

LIMIT=$(calc "($TCP_MBPS < $PAGECACHE_MBPS) ? $TCP_MBPS : $PAGECACHE_MBPS" 0)
RSS_BUDGET_KIB=$((64 * 1024 + 64 * SMALL_CONNS))
kib_mib() { if [ -n "$1" ]; then calc "$1 / 1024" 1; else echo "n/a"; fi; }

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git status --porcelain 2>/dev/null | grep -q . && echo " + uncommitted changes" || true)
{
    echo "# upgate against nginx: $STARTED_AT"
    echo
    echo "Commit \`$COMMIT\`$DIRTY; $(nproc) CPUs, $(uname -r); $("$NGINX_BIN" -v 2>&1); $(iperf3 --version | head -1)."
    echo "upgate: threads = $THREADS, pin_threads = $PIN_THREADS (nginx's worker_cpu_affinity auto when true), fsync = false unless the row says fsync = true, log_level = warn,"
    echo "callbacks registered (\`--register\`) unless the row says carried. nginx: worker_processes $THREADS,"
    echo "benches/peers/nginx.conf. Load generator and callback app: \`upgate bench\` (same binary)."
    echo "Medians over $ROUNDS rounds (small requests) or $LARGE_REPS repetitions (large bodies), with the"
    echo "[min-max] range; upgate and nginx alternate so both see the same noise. Total time $(($(date +%s) - STARTED)) s."
    echo
    echo "## Machine limits"
    echo
    echo "| quantity | how | figure |"
    echo "|---|---|---:|"
    echo "| loopback TCP, 1 stream | \`iperf3 -c 127.0.0.1 -t $IPERF_SECS\` (receiver) | $TCP_MBPS MB/s |"
    echo "| page-cache write, recycled pages | \`dd if=/dev/zero bs=1M count=$DD_MIB\` x3 (${DD_RUNS[*]}), median of the repeats | $PAGECACHE_MBPS MB/s |"
    echo "| page-cache write, fresh memory | the first of those runs (pages the VM faults in from the host) | $DD_FIRST MB/s |"
    echo "| write through to the device | same with \`conv=fdatasync\` | $DD_SYNC_MBPS MB/s |"
    echo
    echo "## Results"
    echo
    echo "| scenario | metric | upgate | nginx | upgate / nginx | target | met |"
    echo "|---|---|---:|---:|---:|---|---|"
    echo "| (a) 1 KiB uploads, $SMALL_CONNS conns, pre+post, fsync = false | uploads/s | $A_UP $(range a-upgate-r rps) | $A_NG $(range a-nginx-r rps) | $(ratio "$A_UP" "$A_NG") | >= 1.5x nginx | $(yes_no "$A_UP >= 1.5 * $A_NG") |"
    echo "| | p99 latency, ms | $A_UP99 $(range a-upgate-r p99_ms 1) | $A_NG99 $(range a-nginx-r p99_ms 1) | $(ratio "$A_UP99" "$A_NG99") | <= nginx | $(yes_no "$A_UP99 <= $A_NG99") |"
    echo "| | p50 latency, ms | $A_UP50 | $A_NG50 | $(ratio "$A_UP50" "$A_NG50") | | |"
    echo "| | node CPU per upload, ms (nginx: master + workers) | $A_UPMS | $A_NGMS | $(ratio "$A_UPMS" "$A_NGMS") | <= nginx | $(yes_no "$A_UPMS <= $A_NGMS") |"
    echo "| | errors (all rounds) | $(errs a-upgate-r) | $(errs a-nginx-r) | | 0 | |"
    echo "| | peak RSS (VmHWM; nginx: master + workers), MiB | $(kib_mib "$A_UPRSS") (sampled $(kib_mib "$A_UPSAMP")) | $(kib_mib "$A_NGRSS") | | <= $(calc "$RSS_BUDGET_KIB / 1024" 0) MiB (64 MiB + 64 KiB x $SMALL_CONNS) | $(if [ -n "$A_UPRSS" ]; then yes_no "$A_UPRSS <= $RSS_BUDGET_KIB"; else echo n/a; fi) |"
    echo "| | CPU seconds during a round | $A_UPCPU | $A_NGCPU | | | |"
    echo "| (a') same, upgate fsync = true (nginx syncs nothing) | uploads/s | $A_FS $(range a-upgate-fsync-r rps) | $A_NG | $(ratio "$A_FS" "$A_NG") | >= 1.0x nginx | $(yes_no "$A_FS >= $A_NG") |"
    echo "| | p99 latency, ms; node CPU per upload, ms | $A_FS99; $A_FSMS | $A_NG99; $A_NGMS | | | |"
    echo "| (a'') same, upgate fsync = false, carried callback headers | uploads/s, p99 ms | $A_CA, $A_CA99 | | $(ratio "$A_CA" "$A_NG") | (information) | |"
    echo "| (b) $LARGE_SIZE upload, 1 conn | MB/s | $B_UP $(range b-upgate-r mb_s) | $B_NG $(range b-nginx-r mb_s) | $(ratio "$B_UP" "$B_NG") | >= 1.0x nginx | $(yes_no "$B_UP >= $B_NG") |"
    echo "| | CPU seconds per GiB (server) | $B_UPCPU | $B_NGCPU | $(ratio "$B_UPCPU" "$B_NGCPU") | <= nginx | $(yes_no "$B_UPCPU <= $B_NGCPU") |"
    echo "| (b') same, upgate zero_copy = false | MB/s; CPU s per GiB | $B_CP $(range b-upgate-copy-r mb_s); $B_CPCPU | | $(ratio "$B_CP" "$B_NG") | (information) | |"
    echo "| (c) $LARGE_SIZE download, 1 conn | MB/s | $C1_UP $(range c1-upgate-r mb_s) | $C1_NG $(range c1-nginx-r mb_s) | $(ratio "$C1_UP" "$C1_NG") | >= 1.0x nginx | $(yes_no "$C1_UP >= $C1_NG") |"
    echo "| | CPU seconds per GiB (server) | $C1_UPCPU | $C1_NGCPU | $(ratio "$C1_UPCPU" "$C1_NGCPU") | <= nginx | $(yes_no "$C1_UPCPU <= $C1_NGCPU") |"
    echo "| (c) 4 KiB downloads, $SMALL_CONNS conns | requests/s | $C4_UP $(range c4-upgate-r rps) | $C4_NG $(range c4-nginx-r rps) | $(ratio "$C4_UP" "$C4_NG") | >= 1.2x nginx | $(yes_no "$C4_UP >= 1.2 * $C4_NG") |"
    echo "| | CPU per request, ms | $C4_UPMS | $C4_NGMS | $(ratio "$C4_UPMS" "$C4_NGMS") | <= nginx | $(yes_no "$C4_UPMS <= $C4_NGMS") |"
    echo "| | p99 latency, ms | $C4_UP99 | $C4_NG99 | $(ratio "$C4_UP99" "$C4_NG99") | | |"
    echo "| (f) 1 KiB uploads, $SMALL_CONNS conns, pre+post: form vs raw on upgate; nginx storing the same form whole | uploads/s | form $F1_FORM $(range f1-form-upgate-r rps), raw $F1_RAW $(range f1-raw-upgate-r rps) | $F1_NG $(range f1-form-nginx-r rps) | form / nginx $(ratio "$F1_FORM" "$F1_NG"); form / raw $(ratio "$F1_FORM" "$F1_RAW") | (information) | |"
    echo "| | CPU per upload, ms: form, raw; p99 ms (form) | $F1_FORMMS, $F1_RAWMS; $F1_FORM99 | $F1_NGMS; $F1_NG99 | | | |"
    echo "| (f) $FORM_SIZE uploads, 1 conn: form vs raw on upgate | MB/s | form $FL_FORM $(range fl-form-upgate-r mb_s), raw $FL_RAW $(range fl-raw-upgate-r mb_s) | $FL_NG $(range fl-form-nginx-r mb_s) | form / raw $FL_RATIO (median of per-repetition ratios); form / nginx $(ratio "$FL_FORM" "$FL_NG") | form >= 0.80x raw | $(yes_no "$FL_RATIO >= 0.8") |"
    echo "| | CPU seconds per GiB (server): form, raw | $FL_FORMCPU, $FL_RAWCPU | $FL_NGCPU | $(ratio "$FL_FORMCPU" "$FL_RAWCPU") | (information) | |"
    echo
    echo "## Commands"
    echo
    echo '```'
    echo "benches/peers/run.sh   # SCENARIOS=\"$SCENARIOS\" PIN_THREADS=$PIN_THREADS THREADS=$THREADS SMALL_SECS=$SMALL_SECS SMALL_CONNS=$SMALL_CONNS ROUNDS=$ROUNDS LARGE_SIZE=$LARGE_SIZE LARGE_REPS=$LARGE_REPS DL_SECS=$DL_SECS FORM_SIZE=$FORM_SIZE FORM_REPS=$FORM_REPS"
    echo "upgate bench --serve-callbacks 127.0.0.1:0     # the callback app, at $CB"
    printf '%s\n' "${COMMANDS[@]}" | sed -E 's#127\.0\.0\.1:[0-9]+#127.0.0.1:PORT#g; s#--watch-pid [0-9,]+#--watch-pid PIDS#g; s#(--label [a-z0-9-]+-r)[0-9]+#\1N#' | awk '!seen[$0]++'
    echo '```'
    echo
    echo "## Raw JSON lines"
    echo
    echo '```'
    cat "$RAW"
    echo '```'
} >"$OUT/results.md"
say "wrote $OUT/results.md ($(($(date +%s) - STARTED)) s)"
cat "$OUT/results.md"
