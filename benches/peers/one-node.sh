# shellcheck shell=bash disable=SC2034  # variables for the sourcing scripts
# Shared by the single-node bench scripts (upload-phases.sh, no-post.sh): the release binary,
# the bench callback app and one node (threads = 2, log_level LOG_LEVEL or "warn", fsync as
# given) on free loopback ports, with data under a fresh directory.
#
# Source it, then: one_node FSYNC [extra TOML lines]. Afterwards BIN, W (the work dir), CB
# (the callback app's address), U (the node's URL), NP and CBP (their PIDs) are set.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$ROOT/target/release/upgate
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)

one_node() {
    W=${W:-$(mktemp -d "${TMPDIR:-/tmp}/upgate-bench.XXXXXX")}
    mkdir -p "$W/data"
    "$BIN" bench --serve-callbacks 127.0.0.1:0 >"$W/cb.out" 2>&1 & CBP=$!
    for _ in $(seq 50); do CB=$(grep -oE '127\.0\.0\.1:[0-9]+' "$W/cb.out" | head -1); [ -n "$CB" ] && break; sleep 0.1; done
    cat >"$W/n.toml" <<EOT
listen = "127.0.0.1:0"
data_dir = "$W/data"
threads = 2
fsync = $1
callback_allow = ["$CB"]
log_level = "${LOG_LEVEL:-warn}"
${2:-}
EOT
    "$BIN" serve --config "$W/n.toml" >"$W/n.out" 2>&1 & NP=$!
    for _ in $(seq 50); do U=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$W/n.out" | head -1); [ -n "$U" ] && break; sleep 0.1; done
}
