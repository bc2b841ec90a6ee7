# shellcheck shell=bash disable=SC2034,SC2120  # variables for the sourcing scripts; optional args
# Shared by scripts/demo.sh, scripts/browser-check.sh, scripts/browser-form-check.sh and
# scripts/client-memory.sh: build upgate, start a node and the demo app on free loopback ports
# (port 0; the chosen address is read from their first output line) with data under one
# temporary directory, and stop everything this script started when it exits, whatever the
# reason.
#
# Source it, then: build; step TEXT and indent (narrated scripts); start_node [extra TOML lines…]; start_app [demo-app flags…];
# start_static DIR [NAME], a static file server; chromium_run NAME [chromium flags…].
# Afterwards NODE_URL, APP_URL, STATIC_URL, NODE_PID, APP_PID, STATIC_PID and WORK are set.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO="${CARGO:-cargo}"
PROFILE="${PROFILE:-debug}"
UPGATE="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/upgate"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/upgate-demo.XXXXXX")"
STARTED=()

# stop PID: SIGTERM (`serve` and `demo-app` drain and exit 0), SIGKILL after 10 s; its exit
# status is left in STOP_RC.
stop() {
  local pid=$1 rc=0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || rc=$?
  local kept=() p
  for p in "${STARTED[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  STARTED=("${kept[@]}")
  STOP_RC=$rc
}

cleanup() {
  local rc=$?
  local pid
  for pid in "${STARTED[@]}"; do
    stop "$pid"
  done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step TEXT: the next numbered step of a narrated script (set STEPS to the number of steps).
n=0
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi
step() {
  n=$((n + 1))
  printf '\n%s==> [%d/%d] %s%s\n' "$BOLD" "$n" "$STEPS" "$*" "$PLAIN"
}
# Indents what it reads by four spaces (command output under a step).
indent() { sed 's/^/    /'; }

die() {
  echo "error: $*" >&2
  local log
  for log in "$WORK"/*.log; do
    [ -f "$log" ] || continue
    echo "--- last lines of $(basename "$log"):" >&2
    tail -n 20 "$log" >&2
  done
  exit 1
}

build() {
  local flags=()
  [ "$PROFILE" = release ] && flags+=(--release)
  (cd "$ROOT" && "$CARGO" build --quiet "${flags[@]}" --bin upgate) || die "build failed"
  [ -x "$UPGATE" ] || die "no binary at $UPGATE"
}

# Waits (10 s at most) for a line starting with $2 in file $1 and prints the rest of it.
wait_for_line() {
  local file=$1 prefix=$2 pid=$3 line
  for _ in $(seq 200); do
    line=$(grep -m1 "^$prefix" "$file" 2>/dev/null || true)
    if [ -n "$line" ]; then
      echo "${line#"$prefix"}"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || die "$(basename "$file" .out) exited early"
    sleep 0.05
  done
  die "timed out waiting for '$prefix' in $file"
}

# start_node [TOML lines…]: a node on 127.0.0.1:0 with its data under $WORK/node-data.
start_node() {
  {
    echo 'listen = "127.0.0.1:0"'
    echo "data_dir = \"$WORK/node-data\""
    echo 'threads = 2'
    local line
    for line in "$@"; do echo "$line"; done
  } >"$WORK/node.toml"
  "$UPGATE" serve --config "$WORK/node.toml" >"$WORK/node.out" 2>"$WORK/node.log" &
  NODE_PID=$!
  STARTED+=("$NODE_PID")
  NODE_URL=$(wait_for_line "$WORK/node.out" "upgate listening on " "$NODE_PID")
}

# start_app [demo-app flags…]: the demo app on 127.0.0.1:0, registered with the node.
start_app() {
  "$UPGATE" demo-app --listen 127.0.0.1:0 --register-with "$NODE_URL" "$@" \
    >"$WORK/app.out" 2>"$WORK/app.log" &
  APP_PID=$!
  STARTED+=("$APP_PID")
  APP_URL=$(wait_for_line "$WORK/app.out" "upgate demo-app listening on " "$APP_PID")
}

# start_static DIR [NAME]: Python's http.server serving DIR on 127.0.0.1:0, for pages from an
# origin that is neither the node's nor the demo app's. Sets STATIC_URL and STATIC_PID.
start_static() {
  local name=${2:-static} rest
  python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$1" \
    >"$WORK/$name.out" 2>"$WORK/$name.log" &
  STATIC_PID=$!
  STARTED+=("$STATIC_PID")
  rest=$(wait_for_line "$WORK/$name.out" "Serving HTTP on 127.0.0.1 port " "$STATIC_PID")
  STATIC_URL="http://127.0.0.1:${rest%% *}"
}

# chromium_run NAME [flags…]: headless Chromium with a fresh profile ($WORK/chromium-NAME),
# 90 s at most. Root in a container: no sandbox; nothing that phones home.
chromium_run() {
  local chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
  [ -n "$chromium" ] ||
    die "chromium is not installed (apt-get install -y chromium; it is listed in .ci/packages)"
  timeout 90 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --hide-scrollbars \
    --user-data-dir="$WORK/chromium-$1" "${@:2}" 2>>"$WORK/chromium.log"
}
