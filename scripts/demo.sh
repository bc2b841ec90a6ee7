#!/usr/bin/env bash
# `make demo`: the whole system of patent CN103547339A on loopback, step by step — an upload
# node, the reference application server, and two clients (upgate upload and curl). Starts
# from nothing, leaves nothing behind (temporary directory, every process stopped).
# shellcheck source=lib.sh source-path=SCRIPTDIR disable=SC2119
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STEPS=9
# Shows a command as one would type it (upgate for the binary, files relative to the work dir).
show() {
  local out='' arg
  for arg in "$@"; do
    case "$arg" in
      *[\ \'\"\$\&\|\;\<\>\(\)\*\?%{}]*) out+=" '$arg'" ;;
      *) out+=" $arg" ;;
    esac
  done
  printf '    $%s\n' "$out"
}
upgate() { "$UPGATE" "$@"; }

step "Build upgate ($PROFILE)"
if [ "$PROFILE" = release ]; then show cargo build --release --bin upgate; else show cargo build --bin upgate; fi
echo "    (the first build takes a few minutes)"
build
echo "    ok: $UPGATE"

step "Start the upload node (upgate serve) on a free loopback port"
start_node
show upgate serve --config node.toml
indent <"$WORK/node.toml"
echo "    node listening on $NODE_URL (pid $NODE_PID), data in a temporary directory"

step "Start the application server (upgate demo-app); it registers itself with the node"
show upgate demo-app --listen 127.0.0.1:0 --appid demo --register-with "$NODE_URL" \
  --allow-ext jpg,png,txt,pdf --max-size 50M
start_app --appid demo --allow-ext jpg,png,txt,pdf --max-size 50M
indent <"$WORK/app.out"
echo "    the node's record of the app (GET /upload/register/demo; the secret is never shown again):"
show curl -s "$NODE_URL/upload/register/demo"
curl -sS "$NODE_URL/upload/register/demo" | indent
echo

cd "$WORK"
step "Upload a generated 5 MiB photo with the reference client (upgate upload)"
head -c $((5 * 1024 * 1024)) /dev/urandom >sunset.jpg
show upgate upload sunset.jpg "$NODE_URL/demo/photos/sunset.jpg"
echo "    (head with Expect: 100-continue -> node asks the app's /pre -> 100 Continue -> sendfile body -> node stores, notifies /post -> 201)"
upgate upload sunset.jpg "$NODE_URL/demo/photos/sunset.jpg" >upload1.json ||
  die "upgate upload failed with exit code $?"
indent <upload1.json
echo "    exit code 0: stored"

step "Upload another file with curl (any HTTP/1.1 client works)"
{
  echo "Notes for the upgate demo"
  date -u
  seq 1 20000
} >notes.txt
show curl -sS -T notes.txt -H "appid: demo" -H "Expect: 100-continue" "$NODE_URL/demo/docs/notes.txt"
status=$(curl -sS -o upload2.json -w '%{http_code}' -T notes.txt \
  -H "appid: demo" -H "Expect: 100-continue" "$NODE_URL/demo/docs/notes.txt")
indent <upload2.json
echo
[ "$status" = 201 ] || die "curl upload answered $status"
echo "    HTTP $status: stored"

step "A veto: the application does not accept .exe files"
head -c 100000 /dev/urandom >setup.exe
show upgate upload setup.exe "$NODE_URL/demo/bin/setup.exe"
set +e
upgate upload setup.exe "$NODE_URL/demo/bin/setup.exe" >veto.json 2>veto.err
rc=$?
set -e
indent <veto.json
indent <veto.err
[ "$rc" = 3 ] || die "expected exit code 3 (vetoed), got $rc"
echo "    exit code 3: vetoed by the application; no body byte was sent and nothing was stored:"
show curl -s -o /dev/null -w '%{http_code}' "$NODE_URL/demo/bin/setup.exe"
code=$(curl -s -o /dev/null -w '%{http_code}' "$NODE_URL/demo/bin/setup.exe")
echo "    $code"
[ "$code" = 404 ] || die "the vetoed file is downloadable ($code)"

step "What the application received: both notifications (GET /uploads.json)"
show curl -s "$APP_URL/uploads.json"
curl -sS "$APP_URL/uploads.json" >uploads.json
indent <uploads.json
count=$(grep -c '"upload_id"' uploads.json || true)
[ "$count" = 2 ] || die "the app lists $count uploads, expected 2"
echo "    the app's log of the three pre-upload decisions and two notifications:"
grep -E 'callback: (accepted|vetoed|recorded)' "$WORK/app.log" |
  sed -E 's/^[^ ]+ +INFO [^ ]+ //' | indent

step "Download both files back from the node and compare SHA-256"
for pair in sunset.jpg:photos/sunset.jpg notes.txt:docs/notes.txt; do
  file=${pair%%:*} path=${pair#*:}
  show curl -s -o "downloaded-$file" "$NODE_URL/demo/$path"
  curl -sS --fail -o "downloaded-$file" "$NODE_URL/demo/$path"
  sha256sum "$file" "downloaded-$file" | indent
  [ "$(sha256sum <"$file")" = "$(sha256sum <"downloaded-$file")" ] || die "$file differs after the round trip"
  echo "    $file: identical"
done

step "Stop everything this demo started"
cd "$ROOT"
echo "    (the page $APP_URL/ listed the uploads; make browser-check screenshots it)"
show kill -TERM "$APP_PID" "$NODE_PID"
stop "$APP_PID"
echo "    demo-app exited with status $STOP_RC"
app_rc=$STOP_RC
stop "$NODE_PID"
echo "    node exited with status $STOP_RC (in-flight requests drained)"
if [ "$app_rc" != 0 ] || [ "$STOP_RC" != 0 ]; then die "a process did not stop cleanly"; fi
echo "    the temporary directory is removed on exit"
echo
echo "demo: OK"
