#!/usr/bin/env bash
# upgate with `store = "s3"` beside `store = "local"`, in one run (docs/performance.md, "S3
# origin"): 1 KiB uploads (64 connections, pre + post callbacks, `upgate bench`) and 1 GiB
# uploads (curl -T, one connection) on three configurations
#
#   local                      store = "local"
#   s3 before_callback         store = "s3", origin_write = "before_callback" (the 201 follows
#                              the origin's copy)
#   s3 background              store = "s3", origin_write = "background" (a durable queue entry
#                              before the 201, the copier thread PUTs after it)
#
# and a 1 GiB download at a second node sharing the origin: a cache miss (served while it is
# fetched from the origin) beside a cache hit (the same download again, from its local disk).
#
#   benches/peers/s3-origin.sh            (BIN=path/to/upgate to skip the build)
#
# The origin is a single-node Garage (the recipe of tests/support/garage.rs; installed by
# scripts/garage-deps.sh when missing), fresh for each repetition, on free loopback ports.
# Each repetition runs the three configurations in a rotated order, each on a fresh data dir,
# so that their ratios are taken within one repetition (this machine is noisy). Nodes run with
# threads = 2, fsync = false, log_level = "warn"; everything listens on 127.0.0.1 only.
#
# Writes $OUT/results.md (the tables, the commands, the raw values) and $OUT/run.log; OUT
# defaults to target/s3-origin. Stops what it started (by PID) and deletes its work directory
# (KEEP_WORK=1 keeps it) at exit.
#
# Knobs (environment): REPS (3), SMALL_SECS (10), SMALL_CONNS (64), LARGE_BYTES (1073741824),
# DRAIN_MAX (240: longest wait, in s, for the background queue of the 1 KiB run to empty),
# SKIP_SMALL=1 / SKIP_LARGE=1, BIN, KEEP_WORK.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/target/s3-origin}
REPS=${REPS:-3}
SMALL_SECS=${SMALL_SECS:-10}
SMALL_CONNS=${SMALL_CONNS:-64}
LARGE_BYTES=${LARGE_BYTES:-1073741824}
DRAIN_MAX=${DRAIN_MAX:-240}
# rust-s3 0.38's streamed multipart upload (8 MiB parts) sends an empty last part when the size
# is a multiple of 8 MiB, and Garage refuses it (400 "Bad request: Empty body"): such uploads
# fail at the origin (503 origin_unavailable before the 201; background: never copied).
ORIGIN_HINT=
[ $((LARGE_BYTES % (8 << 20))) != 0 ] || ORIGIN_HINT=" (size a multiple of 8 MiB: rust-s3 sends an empty last part, which Garage refuses; LARGE_BYTES=1073745920 (1 GiB + 4 KiB) avoids it)"
if [ $((LARGE_BYTES % (1 << 30))) = 0 ]; then
    LARGE_NAME="$((LARGE_BYTES >> 30)) GiB"
elif [ "$LARGE_BYTES" -gt $((1 << 30)) ]; then
    LARGE_NAME="$((LARGE_BYTES >> 30)) GiB + $((LARGE_BYTES - (LARGE_BYTES >> 30 << 30))) B"
else
    LARGE_NAME="$(awk "BEGIN {printf \"%.1f\", $LARGE_BYTES / 1048576}") MiB"
fi
THREADS=2
CONFIGS=(local bc bg)
declare -A CFG_NAME=([local]="local" [bc]="s3 before_callback" [bg]="s3 background")

# Garage's key for this bench: the fixed test key of tests/support/garage.rs ("GK" + 24 hex
# digits, 64 hex digits), allowed on the bucket only; Garage lives only as long as this run.
KEY_ID=GK75706761746500000000c100
SECRET=7570676174652d63692d736563726574000000000000000000000000000000c1
RPC_SECRET=7570676174652d7270632d736563726574000000000000000000000000000001
BUCKET=upgate
REGION=garage
export AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$SECRET

mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/upgate-s3-bench.XXXXXX)
SRC=/dev/shm/upgate-s3-bench-src.$$.bin
DL=/dev/shm/upgate-s3-bench-dl.$$.bin
LOG=$OUT/run.log
RAW=$OUT/raw.txt
: >"$LOG"
: >"$RAW"
STARTED=$(date +%s)
STARTED_AT=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

say() { printf '%s\n' "$*" | tee -a "$LOG" >&2; }
die() {
    say "error: $*"
    exit 1
}

# Every process this script starts is recorded here and stopped by PID at exit.
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -f "$SRC" "$DL"
    if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
if [ -z "${BIN:-}" ]; then
    say "building: cargo build --release --bin upgate"
    cargo build --release --quiet --bin upgate >>"$LOG" 2>&1 || die "build failed (see $LOG)"
    BIN=$ROOT/target/release/upgate
fi
# A private copy: others may rebuild target/release while this runs.
cp "$BIN" "$WORK/upgate" || die "no upgate binary at $BIN"
B=$WORK/upgate

"$ROOT/scripts/garage-deps.sh" >>"$LOG" 2>&1 || die "scripts/garage-deps.sh failed (see $LOG)"
GARAGE=
for c in "$(command -v garage || true)" "$HOME/.cargo/bin/garage" "$ROOT/target/tools/bin/garage"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" --version >/dev/null 2>&1; then
        GARAGE=$c
        break
    fi
done
[ -n "$GARAGE" ] || die "no garage binary after scripts/garage-deps.sh"
GARAGE_VERSION=$("$GARAGE" --version 2>/dev/null | head -1)
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- helpers
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port: a port nobody listens on, below the ephemeral range (32768-).
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

now() { date +%s.%N; }
calc() { awk "BEGIN {x = $1; printf \"%.${2:-1}f\", x}"; }
# cpu_ticks PID...: utime + stime of these processes (all their threads), in clock ticks.
cpu_ticks() {
    local t=0 p s
    for p in "$@"; do
        s=($(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null))
        t=$((t + ${s[11]:-0} + ${s[12]:-0}))
    done
    echo "$t"
}
jget() { grep -oE "\"$1\":(\"[^\"]*\"|[^,}]*)" <<<"$2" | head -1 | cut -d: -f2- | tr -d '"'; }

# rec KEY REP VALUE: one measured value (the report reads them back from $RAW).
rec() { echo "$1 r$2 $3" >>"$RAW"; }

COMMANDS=()
cmd() { COMMANDS+=("$*"); }

# s3curl ARGS...: curl signing as the bench key (curl does not send X-Amz-Content-Sha256 by
# itself and Garage refuses requests without it).
s3curl() {
    curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$KEY_ID:$SECRET" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
# origin_has KEY: the origin answers a HEAD of the object with 200.
origin_has() {
    [ "$(s3curl --max-time 5 -o /dev/null -I -w '%{http_code}' "$S3/$BUCKET/$1" 2>/dev/null)" = 200 ]
}

# ---------------------------------------------------------------- garage (the origin)
# start_garage NAME: a fresh single-node Garage with bucket "upgate" and the bench key allowed
# on it; sets S3 (endpoint URL), GPID, GDIR.
gcli() { RUST_LOG=garage=warn "$GARAGE" -c "$GDIR/garage.toml" "$@" </dev/null; }
start_garage() {
    GDIR=$WORK/garage-$1
    mkdir -p "$GDIR"
    local rpc s3p i node
    rpc=$(free_port)
    s3p=$(free_port)
    while [ "$s3p" = "$rpc" ]; do s3p=$(free_port); done
    # As tests/support/garage.rs, plus compression_level = "none": without it Garage tries
    # zstd on every block, CPU this 2-core machine's node would lose to the origin (and the
    # bodies here are random bytes, which do not compress).
    cat >"$GDIR/garage.toml" <<EOF
metadata_dir = "$GDIR/meta"
data_dir = "$GDIR/data"
db_engine = "lmdb"
replication_factor = 1
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$RPC_SECRET"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$s3p"
root_domain = ".s3.garage.localhost"
EOF
    RUST_LOG=garage=warn "$GARAGE" -c "$GDIR/garage.toml" server </dev/null >"$GDIR/garage.log" 2>&1 &
    GPID=$!
    PIDS+=("$GPID")
    for ((i = 0; i < 400; i++)); do
        gcli status >/dev/null 2>&1 && break
        kill -0 "$GPID" 2>/dev/null || { cat "$GDIR/garage.log" >&2; die "garage exited"; }
        sleep 0.05
    done
    node=$(gcli node id -q 2>>"$LOG" | cut -d@ -f1)
    [ -n "$node" ] || { cat "$GDIR/garage.log" >&2; die "garage did not start"; }
    {
        gcli layout assign -z dc1 -c 1G "$node" &&
            gcli layout apply --version 1 &&
            gcli key import --yes -n bench "$KEY_ID" "$SECRET" &&
            gcli bucket create "$BUCKET" &&
            gcli bucket allow --read --write --owner "$BUCKET" --key bench
    } >>"$LOG" 2>&1 || die "garage setup failed (see $LOG)"
    S3=http://127.0.0.1:$s3p
    # Ready when a signed HEAD of the bucket answers 200.
    for ((i = 0; i < 400; i++)); do
        [ "$(s3curl --max-time 2 -o /dev/null -I -w '%{http_code}' "$S3/$BUCKET" 2>/dev/null)" = 200 ] && return 0
        sleep 0.05
    done
    die "garage at $S3 did not answer a signed HEAD of the bucket"
}
stop_garage() {
    kill "$GPID" 2>/dev/null || true
    wait "$GPID" 2>/dev/null || true
    rm -rf "$GDIR"
}

# ---------------------------------------------------------------- upgate nodes
"$B" bench --serve-callbacks 127.0.0.1:0 >"$WORK/cbapp.out" 2>&1 &
PIDS+=($!)
CB=$(wait_line "$WORK/cbapp.out" '127\.0\.0\.1:[0-9]+') || die "callback app did not start"

store_toml() {
    case $1 in
    local) echo 'store = "local"' ;;
    bc | bg)
        local mode=before_callback
        [ "$1" = bg ] && mode=background
        printf 'store = "s3"\ns3_endpoint = "%s"\ns3_bucket = "%s"\ns3_region = "%s"\norigin_write = "%s"\n' \
            "$S3" "$BUCKET" "$REGION" "$mode"
        ;;
    esac
}

# start_node NAME CONFIG: a node on a fresh data dir; sets NODE (URL), NPID, NDIR.
start_node() {
    NDIR=$WORK/node-$1
    mkdir -p "$NDIR"
    cat >"$NDIR.toml" <<EOF
listen = "127.0.0.1:0"
data_dir = "$NDIR"
threads = $THREADS
fsync = false
callback_allow = ["$CB"]
log_level = "warn"
$(store_toml "$2")
EOF
    "$B" serve --config "$NDIR.toml" >"$NDIR.out" 2>&1 &
    NPID=$!
    PIDS+=("$NPID")
    NODE=$(wait_line "$NDIR.out" 'http://127\.0\.0\.1:[0-9]+') || die "node $1 did not start"
}
stop_node() {
    kill "$NPID" 2>/dev/null || true
    wait "$NPID" 2>/dev/null || true
}
register() {
    curl -sS -o /dev/null -XPOST "$NODE/upload/register" -H 'content-type: application/json' \
        -d "{\"appid\":\"bench\",\"callback_url_pre\":\"http://$CB/pre\",\"callback_url_post\":\"http://$CB/post\"}"
}
queued() { find "$NDIR/origin/queue" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l; }

# ---------------------------------------------------------------- 1 KiB uploads
small() {
    local cfg=$1 r=$2 line g0 g1 t0 left drained ok c0 c1
    start_node "small-$cfg-r$r" "$cfg"
    "$B" bench --target "$NODE" -c "$SMALL_CONNS" -d 1 --size 1k --appid bench \
        --callback-app "$CB" --register --json --label "warmup-$cfg-r$r" >>"$LOG" 2>&1
    cmd "upgate bench --target http://127.0.0.1:PORT -c $SMALL_CONNS -d 1 --size 1k --appid bench --callback-app 127.0.0.1:PORT --register --json   # warm-up"
    g0=$(cpu_ticks "$GPID")
    line=$("$B" bench --target "$NODE" -c "$SMALL_CONNS" -d "$SMALL_SECS" --size 1k --appid bench \
        --callback-app "$CB" --register --watch-pid "$NPID" --json --label "small-$cfg-r$r" 2>>"$LOG")
    g1=$(cpu_ticks "$GPID")
    cmd "upgate bench --target http://127.0.0.1:PORT -c $SMALL_CONNS -d $SMALL_SECS --size 1k --appid bench --callback-app 127.0.0.1:PORT --register --watch-pid NODE_PID --json"
    echo "$line" >>"$LOG"
    ok=$(jget ok "$line")
    [ -n "$ok" ] && [ "$ok" != 0 ] || die "1 KiB run $cfg r$r failed: $line"
    rec "small.rps.$cfg" "$r" "$(jget rps "$line")"
    rec "small.p50.$cfg" "$r" "$(jget p50_ms "$line")"
    rec "small.p99.$cfg" "$r" "$(jget p99_ms "$line")"
    rec "small.errors.$cfg" "$r" "$(jget errors "$line")"
    rec "small.cpu_ms.$cfg" "$r" "$(calc "$(jget cpu_s "$line") * 1000 / $ok" 4)"
    [ "$cfg" = local ] || rec "small.gcpu_ms.$cfg" "$r" "$(calc "($g1 - $g0) * 1000 / $CLK_TCK / $ok" 4)"
    if [ "$cfg" = bg ]; then
        # The copies still queued when the load stops, and how long the copier takes to send
        # them (the origin holds every file once the queue is empty).
        left=$(queued)
        t0=$(now)
        c0=$(cpu_ticks "$NPID")
        g0=$(cpu_ticks "$GPID")
        drained=no
        while [ "$(calc "$(now) - $t0 < $DRAIN_MAX" 0)" = 1 ]; do
            [ "$(queued)" = 0 ] && { drained=yes; break; }
            sleep 0.2
        done
        c1=$(cpu_ticks "$NPID")
        g1=$(cpu_ticks "$GPID")
        rec "small.queued.bg" "$r" "$left"
        if [ $drained = yes ]; then
            rec "small.drain_s.bg" "$r" "$(calc "$(now) - $t0" 1)"
        else
            rec "small.drain_s.bg" "$r" "$(calc "$(now) - $t0" 1)+($(queued)_left)"
        fi
        rec "small.drain_cpu_ms.bg" "$r" "$(calc "($c1 - $c0) * 1000 / $CLK_TCK / $ok" 4)"
        rec "small.drain_gcpu_ms.bg" "$r" "$(calc "($g1 - $g0) * 1000 / $CLK_TCK / $ok" 4)"
        say "  $cfg r$r: $(jget rps "$line") uploads/s, $left copies queued at the end, drained: $drained in $(calc "$(now) - $t0" 1) s"
    else
        say "  $cfg r$r: $(jget rps "$line") uploads/s, p99 $(jget p99_ms "$line") ms"
    fi
    stop_node
}

# ---------------------------------------------------------------- 1 GiB uploads
# Before each large transfer: write and delete a scratch file, so that it lands in recycled
# page-cache pages (a busy node's steady state) rather than fresh memory the VM faults in.
recycle_pages() {
    dd if=/dev/zero of="$WORK/recycle.bin" bs=1M count=1280 status=none
    rm -f "$WORK/recycle.bin"
}

large() {
    local cfg=$1 r=$2 key="bench/big-$cfg-r$2.bin" out code t c0 c1 g0 g1 t0 t1 t2 held
    start_node "large-$cfg-r$r" "$cfg"
    register
    recycle_pages
    c0=$(cpu_ticks "$NPID")
    g0=$(cpu_ticks "$GPID")
    t0=$(now)
    out=$(curl -sS -T "$SRC" "$NODE/$key" -H "appid: bench" -o "$WORK/resp" -w '%{http_code} %{time_total}')
    t1=$(now)
    cmd "curl -T $SRC http://127.0.0.1:PORT/$key -H 'appid: bench' -w '%{http_code} %{time_total}'   # app registered with pre + post"
    code=${out%% *}
    t=${out#* }
    [ "$code" = 201 ] || die "$LARGE_NAME upload $cfg r$r: $out $(cat "$WORK/resp")$ORIGIN_HINT"
    held=
    case $cfg in
    bc) origin_has "$key" || die "before_callback: the origin lacks $key after the 201" ;;
    bg)
        # The 201 came before the copy: poll the origin until it holds the object.
        while ! origin_has "$key"; do
            [ "$(calc "$(now) - $t0 < 300" 0)" = 1 ] || die "background: $key not at the origin after 300 s$ORIGIN_HINT"
            if grep -q 'queued copies wait for the origin' "$NDIR.out"; then
                die "background: the copier failed: $(grep -m1 'queued copies wait' "$NDIR.out")$ORIGIN_HINT"
            fi
            sleep 0.05
        done
        t2=$(now)
        held=$(calc "$t2 - $t0" 2)
        rec "large.origin_s.bg" "$r" "$held"
        ;;
    esac
    c1=$(cpu_ticks "$NPID")
    g1=$(cpu_ticks "$GPID")
    rec "large.mbs.$cfg" "$r" "$(calc "$LARGE_BYTES / $t / 1e6" 0)"
    rec "large.s.$cfg" "$r" "$(calc "$t" 2)"
    # Node CPU from the upload's start until the origin holds it (the 201 for local and
    # before_callback; the copier's work included for background).
    rec "large.cpu_gib.$cfg" "$r" "$(calc "($c1 - $c0) / $CLK_TCK * 1073741824 / $LARGE_BYTES" 2)"
    [ "$cfg" = local ] || rec "large.gcpu_gib.$cfg" "$r" "$(calc "($g1 - $g0) / $CLK_TCK * 1073741824 / $LARGE_BYTES" 2)"
    cmp -s "$SRC" "$NDIR/files/$key" || die "$LARGE_NAME upload $cfg r$r: the stored file differs"
    say "  $cfg r$r: $(calc "$LARGE_BYTES / $t / 1e6" 0) MB/s ($t s to the 201)${held:+, at the origin after $held s}, node CPU $(((c1 - c0))) ticks"
    stop_node
    rm -rf "$NDIR"
}

# ---------------------------------------------------------------- 1 GiB miss / hit downloads
# download KIND R KEY: one download of KEY from node Y, verified against the source.
download() {
    local kind=$1 r=$2 key=$3 out code ttfb t size c0 c1 g0 g1
    recycle_pages
    rm -f "$DL"
    c0=$(cpu_ticks "$NPID")
    g0=$(cpu_ticks "$GPID")
    out=$(curl -sS -o "$DL" "$NODE/$key" -w '%{http_code} %{time_starttransfer} %{time_total} %{size_download}')
    c1=$(cpu_ticks "$NPID")
    g1=$(cpu_ticks "$GPID")
    cmd "curl -o $DL http://127.0.0.1:PORT/$key -w '%{http_code} %{time_starttransfer} %{time_total} %{size_download}'   # $kind"
    read -r code ttfb t size <<<"$out"
    [ "$code" = 200 ] && [ "$size" = "$LARGE_BYTES" ] || die "$kind download r$r: $out"
    cmp -s "$SRC" "$DL" || die "$kind download r$r: the bytes differ"
    rm -f "$DL"
    rec "dl.mbs.$kind" "$r" "$(calc "$LARGE_BYTES / $t / 1e6" 0)"
    rec "dl.ttfb_ms.$kind" "$r" "$(calc "$ttfb * 1000" 1)"
    rec "dl.s.$kind" "$r" "$(calc "$t" 2)"
    rec "dl.cpu_gib.$kind" "$r" "$(calc "($c1 - $c0) / $CLK_TCK * 1073741824 / $LARGE_BYTES" 2)"
    rec "dl.gcpu_gib.$kind" "$r" "$(calc "($g1 - $g0) / $CLK_TCK * 1073741824 / $LARGE_BYTES" 2)"
    say "  $kind r$r: $(calc "$LARGE_BYTES / $t / 1e6" 0) MB/s, first byte after $(calc "$ttfb * 1000" 1) ms, node CPU $((c1 - c0)) ticks, Garage $((g1 - g0))"
}

miss_hit() {
    local r=$1 key="bench/big-bc-r$1.bin"
    # Node Y: same origin, fresh data dir; the file was uploaded at another node (X, the
    # before_callback upload of this repetition), so Y's first download is a miss.
    start_node "y-r$r" bc
    [ ! -e "$NDIR/files/$key" ] || die "node Y already holds $key"
    download miss "$r" "$key"
    [ -f "$NDIR/files/$key" ] || die "the miss did not fill node Y's cache"
    download hit "$r" "$key"
    stop_node
    rm -rf "$NDIR"
}

# ---------------------------------------------------------------- the run
say "== s3-origin bench: REPS=$REPS SMALL_SECS=$SMALL_SECS SMALL_CONNS=$SMALL_CONNS LARGE_BYTES=$LARGE_BYTES; $GARAGE_VERSION; work dir $WORK"
say "callback app on $CB; load average at start: $LOAD_START"
if [ -z "${SKIP_LARGE:-}" ]; then
    say "writing $LARGE_NAME of random bytes to $SRC"
    head -c "$LARGE_BYTES" /dev/urandom >"$SRC" || die "cannot write $SRC"
fi
for r in $(seq 1 "$REPS"); do
    # Rotate the order: r1 local bc bg, r2 bc bg local, r3 bg local bc, ...
    order=()
    for i in 0 1 2; do order+=("${CONFIGS[$(((i + r - 1) % 3))]}"); done
    start_garage "r$r"
    say "== repetition $r/$REPS (order: ${order[*]}; Garage at $S3; load $(cut -d' ' -f1-3 /proc/loadavg))"
    rec load.start "$r" "$(cut -d' ' -f1 /proc/loadavg)"
    if [ -z "${SKIP_SMALL:-}" ]; then
        for cfg in "${order[@]}"; do small "$cfg" "$r"; done
    fi
    if [ -z "${SKIP_LARGE:-}" ]; then
        for cfg in "${order[@]}"; do large "$cfg" "$r"; done
        miss_hit "$r"
    fi
    stop_garage
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
# vals KEY: the values of KEY, repetition order.
vals() { awk -v k="$1" '$1 == k {print $3}' "$RAW"; }
median() {
    grep -E '^[0-9.eE+-]+$' | sort -g |
        awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}
# cell KEY DECIMALS: "median (r1 / r2 / r3)".
cell() {
    local m all
    all=$(vals "$1" | while read -r v; do
        if [[ $v =~ ^[0-9.eE+-]+$ ]]; then calc "$v" "$2"; else printf '%s' "$v"; fi
        echo
    done | paste -sd/ | sed 's#/# / #g')
    [ -n "$all" ] || { echo "n/a"; return; }
    m=$(vals "$1" | median)
    [ "$m" = n/a ] || m=$(calc "$m" "$2")
    echo "**$m** ($all)"
}
# ratio KEY_A KEY_B: the median over repetitions of A / B (both measured in one repetition).
ratio() {
    local r a b m
    m=$(for r in $(seq 1 "$REPS"); do
        a=$(awk -v k="$1" -v r="r$r" '$1 == k && $2 == r {print $3}' "$RAW")
        b=$(awk -v k="$2" -v r="r$r" '$1 == k && $2 == r {print $3}' "$RAW")
        [ -n "$a" ] && [ -n "$b" ] && [ "$(calc "$b != 0" 0)" = 1 ] && calc "$a / $b" 3 && echo
    done | median)
    [ "$m" = n/a ] && echo "n/a" || calc "$m" 2
}
row3() { # row3 LABEL KEYPREFIX DECIMALS
    echo "| $1 | $(cell "$2.local" "$3") | $(cell "$2.bc" "$3") | $(cell "$2.bg" "$3") |"
}
ratios() { # ratios LABEL KEYPREFIX
    echo "| $1 | 1 | $(ratio "$2.bc" "$2.local")x | $(ratio "$2.bg" "$2.local")x |"
}

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git status --porcelain 2>/dev/null | grep -v 'benches/peers/s3-origin.sh$' | grep -q . && echo " + uncommitted changes" || true)
{
    echo "# upgate with an S3 origin beside the local store: $STARTED_AT"
    echo
    echo "Commit \`$COMMIT\`$DIRTY; $(nproc) CPUs, $(uname -r); origin: $GARAGE_VERSION, single node,"
    echo "\`compression_level = \"none\"\`, on the same machine (its CPU competes with the node's)."
    echo "Nodes: threads = $THREADS, **fsync = false** (the background queue's entries are synced"
    echo "regardless), log_level = \"warn\", the app registered with pre + post callbacks"
    echo "(\`upgate bench --serve-callbacks\`). $REPS repetitions, each with a fresh Garage and the three"
    echo "configurations in a rotated order on fresh data dirs; cells: **median** (per repetition)."
    echo "Load average at start $LOAD_START, at end $LOAD_END; 1-minute load at the start of each"
    echo "repetition: $(vals load.start | paste -sd' '). Total time $(($(date +%s) - STARTED)) s."
    echo
    if [ -z "${SKIP_SMALL:-}" ]; then
        echo "## 1 KiB uploads, $SMALL_CONNS connections, pre + post callbacks, $SMALL_SECS s per repetition"
        echo
        echo "| metric | local | s3 before_callback | s3 background |"
        echo "|---|---:|---:|---:|"
        row3 "uploads/s" small.rps 0
        ratios "uploads/s, ratio to local (median of per-repetition ratios)" small.rps
        row3 "p50 latency, ms" small.p50 1
        row3 "p99 latency, ms" small.p99 1
        row3 "node CPU per upload, ms" small.cpu_ms 3
        row3 "Garage CPU per upload during the run, ms" small.gcpu_ms 3
        row3 "errors" small.errors 0
        echo "| copies still queued when the load stopped | | | $(cell small.queued.bg 0) |"
        echo "| s until the queue was empty (the origin holds every file) | | | $(cell small.drain_s.bg 1) |"
        echo "| node + Garage CPU per upload spent on the queue after the load, ms | | | $(cell small.drain_cpu_ms.bg 3) + $(cell small.drain_gcpu_ms.bg 3) |"
        echo
    fi
    if [ -z "${SKIP_LARGE:-}" ]; then
        echo "## $LARGE_NAME upload, 1 connection (\`curl -T\` from /dev/shm, random bytes)"
        echo
        echo "| metric | local | s3 before_callback | s3 background |"
        echo "|---|---:|---:|---:|"
        row3 "MB/s to the 201" large.mbs 0
        ratios "MB/s, ratio to local (median of per-repetition ratios)" large.mbs
        row3 "s to the 201" large.s 2
        echo "| s from the upload's start until the origin holds the object | | (before the 201) | $(cell large.origin_s.bg 2) |"
        row3 "node CPU s per GiB (until the origin holds the object)" large.cpu_gib 2
        row3 "Garage CPU s per GiB" large.gcpu_gib 2
        echo
        echo "## $LARGE_NAME download at a second node (fresh data dir, same origin), \`curl -o\` to /dev/shm"
        echo
        echo "The file is the repetition's before_callback upload (made at another node). The miss is"
        echo "served while the node fetches it from the origin into its cache; the hit is the same"
        echo "download again, from that cache. Each download's bytes are compared with the source."
        echo
        echo "| metric | cache miss (origin) | cache hit (local disk) | miss / hit |"
        echo "|---|---:|---:|---:|"
        echo "| MB/s | $(cell dl.mbs.miss 0) | $(cell dl.mbs.hit 0) | $(ratio dl.mbs.miss dl.mbs.hit)x |"
        echo "| time to first byte, ms | $(cell dl.ttfb_ms.miss 1) | $(cell dl.ttfb_ms.hit 1) | |"
        echo "| total s | $(cell dl.s.miss 2) | $(cell dl.s.hit 2) | |"
        echo "| node CPU s per GiB | $(cell dl.cpu_gib.miss 2) | $(cell dl.cpu_gib.hit 2) | |"
        echo "| Garage CPU s per GiB | $(cell dl.gcpu_gib.miss 2) | $(cell dl.gcpu_gib.hit 2) | |"
        echo
    fi
    echo "## Commands"
    echo
    echo '```'
    echo "benches/peers/s3-origin.sh   # REPS=$REPS SMALL_SECS=$SMALL_SECS SMALL_CONNS=$SMALL_CONNS LARGE_BYTES=$LARGE_BYTES"
    echo "upgate bench --serve-callbacks 127.0.0.1:0   # the callback app"
    echo "garage -c garage.toml server   # then: layout assign -z dc1 -c 1G NODE; layout apply --version 1; key import; bucket create upgate; bucket allow --read --write --owner upgate --key bench"
    echo "upgate serve --config node.toml   # per configuration and repetition, fresh data_dir; AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment"
    echo "curl -XPOST http://127.0.0.1:PORT/upload/register -d '{\"appid\":\"bench\",\"callback_url_pre\":\"http://CB/pre\",\"callback_url_post\":\"http://CB/post\"}'   # before the large uploads"
    printf '%s\n' "${COMMANDS[@]}" | sed -E "s#$DL#/dev/shm/DL.bin#g; s#$SRC#/dev/shm/SRC.bin#g; s#-r[0-9]+\.bin#-rN.bin#g" | awk '!seen[$0]++'
    echo "curl --aws-sigv4 aws:amz:$REGION:s3 --user KEY:SECRET -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -I http://127.0.0.1:PORT/$BUCKET/KEY   # does the origin hold it (polled every 50 ms for background)"
    echo "/proc/PID/stat fields 14 + 15 (utime + stime, all threads) of the node and of Garage, before and after"
    echo '```'
    echo
    echo "Node config (plus the store lines below):"
    echo
    echo '```toml'
    echo 'listen = "127.0.0.1:0"'
    echo "threads = $THREADS"
    echo 'fsync = false'
    echo 'callback_allow = ["127.0.0.1:PORT"]'
    echo 'log_level = "warn"'
    echo '# local:              store = "local"'
    echo '# s3 before_callback: store = "s3", s3_endpoint = "http://127.0.0.1:PORT", s3_bucket = "upgate", s3_region = "garage", origin_write = "before_callback"'
    echo '# s3 background:      the same with origin_write = "background"'
    echo '```'
    echo
    echo "## Raw values (key, repetition, value)"
    echo
    echo '```'
    cat "$RAW"
    echo '```'
} >"$OUT/results.md"
say "wrote $OUT/results.md ($(($(date +%s) - STARTED)) s)"
cat "$OUT/results.md"
