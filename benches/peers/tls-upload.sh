#!/bin/bash
# A first look at HTTPS uploads (docs/performance.md, "TLS: a first look"): 1 GiB uploaded by
# curl over HTTPS to upgate (tls_listen) and to nginx (`ssl` on the same ECDSA P-256
# certificate, the config of benches/peers/nginx.conf), alternating 3 times on fresh servers,
# with the server's CPU ticks (10 ms) from /proc. Not the issue's benchmark table (no small
# uploads, no handshake rate, no download): one client, curl, for both.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
(cd "$ROOT" && cargo build --release --quiet --bin upgate)
B=$ROOT/target/release/upgate
W=$(mktemp -d /tmp/upgate-tls-bench.XXXXXX); mkdir -p $W/nginx/body $W/static
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $W/key.pem -out $W/cert.pem -days 2 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
$B bench --serve-callbacks 127.0.0.1:0 > $W/cb.out 2>&1 & CBP=$!
sleep 0.5; CB=$(grep -oE '127\.0\.0\.1:[0-9]+' $W/cb.out | head -1)
cat > $W/u.toml <<E2
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
$B serve --config $W/u.toml > $W/u.out 2>$W/u.log & UP=$!
sleep 1; U=$(grep -oE 'http://127[0-9.:]+' $W/u.out | head -1); US=$(grep -oE 'https://127[0-9.:]+' $W/u.out | head -1)
curl -s -XPOST $U/upload/register -H 'content-type: application/json' -d "{\"appid\":\"bench\",\"callback_url_pre\":\"http://$CB/pre\",\"callback_url_post\":\"http://$CB/post\"}" > /dev/null
NP=$((20000 + RANDOM % 10000))
sed -e "s#@WORKERS@#2#g" -e "s#@PORT@#$NP#g" -e "s#@CBAPP@#$CB#g" -e "s#@DIR@#$W/nginx#g" -e "s#@ROOT@#$W/static#g" -e "s#@APPID@#bench#g" -e "s#@DLAPPID@#dl#g" -e "s#@USER@#$(id -un)#g" $ROOT/benches/peers/nginx.conf > $W/nginx.conf
sed -i "s#listen 127.0.0.1:$NP reuseport backlog=4096;#listen 127.0.0.1:$NP ssl reuseport backlog=4096;\n        ssl_certificate $W/cert.pem;\n        ssl_certificate_key $W/key.pem;\n        ssl_protocols TLSv1.2 TLSv1.3;#" $W/nginx.conf
nginx -p $W/nginx/ -e $W/nginx/error.log -c $W/nginx.conf & NGP=$!
sleep 1
NGPIDS="$NGP $(pgrep -P $NGP | tr '\n' ' ')"
cpu() { local t=0; for p in $*; do s=($(cat /proc/$p/stat 2>/dev/null | sed 's/.*) //')); t=$((t + ${s[11]:-0} + ${s[12]:-0})); done; echo $t; }
head -c $((1024*1024*1024)) /dev/zero | tr '\0' 'a' > /dev/shm/tb.bin
for r in 1 2 3; do
  for who in upgate nginx; do
    find $W/udata/files $W/nginx/body -type f -delete 2>/dev/null
    if [ $who = upgate ]; then url="$US/bench/r$r.bin"; pids=$UP; else url="https://127.0.0.1:$NP/bench/r$r.bin"; pids=$NGPIDS; fi
    c0=$(cpu $pids)
    out=$(curl -sS --cacert $W/cert.pem -T /dev/shm/tb.bin "$url" -H "appid: bench" -o /dev/null -w '%{http_code} %{speed_upload}')
    c1=$(cpu $pids)
    echo "$who r$r $out cpu_ticks=$((c1-c0))"
  done
done
rm -f /dev/shm/tb.bin
kill $UP $CBP $NGP 2>/dev/null; wait 2>/dev/null
rm -rf "$W"
