# shellcheck shell=bash
# Sourced by bench scripts: the page-cache pages an upload lands in.
#
# recycle_pages DIR MIB: writes and deletes a scratch file of MIB MiB in DIR, just before a
# measured upload, so that the upload lands in pages the kernel has just freed (the steady
# state of a busy node) rather than in fresh memory.
#
# hold_memory / release_memory: this VM's balloon driver hands pages freed a few seconds ago
# (0.6-4 s seen) back to the host, and touching them again costs 10-20 times a normal page-cache write
# (docs/performance.md, "Traps met while measuring"). hold_memory raises the driver's
# min_free_ms to 60 s for the run, so recycled pages are still the guest's when the upload
# uses them; release_memory puts the old value back (call it from the script's EXIT trap).
# Nothing happens where the knob is absent or not writable, or with HOLD_MEMORY=0.

HOLD_KNOB=/sys/module/page_reporting/parameters/min_free_ms
HOLD_PREV=

recycle_pages() {
    dd if=/dev/zero of="$1/recycle.bin" bs=1M count="$2" status=none
    rm -f "$1/recycle.bin"
}

hold_memory() {
    [ "${HOLD_MEMORY:-1}" = 1 ] && [ -w "$HOLD_KNOB" ] || return 0
    HOLD_PREV=$(cat "$HOLD_KNOB")
    echo 60000 2>/dev/null >"$HOLD_KNOB" || HOLD_PREV=
    [ -z "$HOLD_PREV" ] || echo "memory held: $HOLD_KNOB 60000 for this run (was $HOLD_PREV)" >&2
}

release_memory() {
    [ -z "$HOLD_PREV" ] || echo "$HOLD_PREV" 2>/dev/null >"$HOLD_KNOB" || true
    HOLD_PREV=
}
