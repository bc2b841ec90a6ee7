#!/usr/bin/env bash
# `make client-memory`: the resident memory of `upgate upload` while it sends a 2 GiB sparse
# file (`truncate -s 2G`) to a real node (fsync = false) with the demo app deciding. The client
# sends with sendfile(2), so its peak RSS must stay under LIMIT_KIB (32 MiB) whatever the size.
# SIZE and LIMIT_KIB can be overridden; PROFILE=release measures the release build. TLS=1 sends
# over HTTPS to the node's tls_listen instead (a certificate made by openssl, --cacert), where
# the body goes through one 64 KiB buffer and rustls rather than sendfile.
# shellcheck source=lib.sh source-path=SCRIPTDIR disable=SC2119
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZE="${SIZE:-2G}"
LIMIT_KIB="${LIMIT_KIB:-32768}"

need_kib=$(($(numfmt --from=iec "$SIZE") / 1024 + 262144))
free_kib=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
[ "$free_kib" -ge "$need_kib" ] || die "the node needs $((need_kib / 1024)) MiB free in $WORK to store the file; $((free_kib / 1024)) MiB free"

build
TLS="${TLS:-0}"
tls=()
if [ "$TLS" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=node \
    -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>"$WORK/openssl.log" || die "openssl failed"
  tls=('tls_listen = "127.0.0.1:0"' "tls_cert = \"$WORK/cert.pem\"" "tls_key = \"$WORK/key.pem\"")
fi
start_node 'fsync = false' "${tls[@]}"
start_app --appid demo
target="$NODE_URL/demo/big.bin"
client_flags=(upload -q)
if [ "$TLS" = 1 ]; then
  target="https://$(wait_for_line "$WORK/node.out" "upgate listening on https://" "$NODE_PID")/demo/big.bin"
  client_flags+=(--cacert "$WORK/cert.pem")
fi
truncate -s "$SIZE" "$WORK/big.bin"
bytes=$(stat -c %s "$WORK/big.bin")
echo "client-memory: to $target, app $APP_URL, file $bytes bytes (sparse), $PROFILE build"

# Peak RSS from the kernel (VmHWM), sampled until the client exits; /usr/bin/time -v reports
# the same figure (ru_maxrss) when installed.
start=$(date +%s.%N)
if [ -x /usr/bin/time ]; then
  /usr/bin/time -v -o "$WORK/time.txt" "$UPGATE" "${client_flags[@]}" "$WORK/big.bin" "$target" \
    >"$WORK/upload.json" 2>"$WORK/upload.err" &
else
  "$UPGATE" "${client_flags[@]}" "$WORK/big.bin" "$target" >"$WORK/upload.json" 2>"$WORK/upload.err" &
fi
runner=$!
hwm=0
client=""
while kill -0 "$runner" 2>/dev/null; do
  if [ -z "$client" ]; then
    # Under /usr/bin/time the client is its child; otherwise it is the job itself.
    if [ -f "$WORK/time.txt" ] || [ -x /usr/bin/time ]; then
      client=$(pgrep -P "$runner" || true)
    else
      client=$runner
    fi
  fi
  if [ -n "$client" ] && [ -r "/proc/$client/status" ]; then
    v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$client/status" 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
  fi
  sleep 0.05
done
rc=0
wait "$runner" || rc=$?
end=$(date +%s.%N)
[ "$rc" = 0 ] || die "upload failed with exit code $rc: $(cat "$WORK/upload.err")"
grep -q "\"size\":$bytes" "$WORK/upload.json" || die "the node did not report $bytes bytes: $(cat "$WORK/upload.json")"
stored=$(stat -c %s "$WORK/node-data/files/demo/big.bin" 2>/dev/null || echo missing)
[ "$stored" = "$bytes" ] || die "the stored file has $stored bytes, expected $bytes"

maxrss=""
[ -f "$WORK/time.txt" ] && maxrss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
peak=${maxrss:-$hwm}
[ "$hwm" -gt "$peak" ] && peak=$hwm
secs=$(awk "BEGIN { print $end - $start }")
rate=$(awk "BEGIN { printf \"%.0f\", $bytes / 1048576 / $secs }")
echo "client-memory: uploaded $bytes bytes in $(printf %.1f "$secs") s (~$rate MiB/s)"
echo "client-memory: client peak RSS: VmHWM sampled ${hwm} KiB, /usr/bin/time max RSS ${maxrss:-n/a} KiB (limit $LIMIT_KIB KiB)"
[ "$peak" -gt 0 ] || die "could not measure the client's memory"
[ "$peak" -lt "$LIMIT_KIB" ] || die "peak RSS $peak KiB is over the limit of $LIMIT_KIB KiB"
echo "client-memory: OK ($((peak / 1024)) MiB < $((LIMIT_KIB / 1024)) MiB)"
