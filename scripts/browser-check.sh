#!/usr/bin/env bash
# `make browser-check` (part of `make test`): the demo app's page in a real browser. Starts a
# node and the demo app, uploads a file, opens the app's page in headless Chromium, checks that
# the file's name and its download link on the node are in the rendered DOM, and writes a
# screenshot to target/demo-page.png.
# shellcheck source=lib.sh source-path=SCRIPTDIR disable=SC2119
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SHOT="${SCREENSHOT:-$ROOT/target/demo-page.png}"

build
start_node
start_app --appid demo --allow-ext jpg,png,txt
echo "browser-check: node $NODE_URL, app $APP_URL"

NAME="browser-check-report.txt"
seq 1 5000 >"$WORK/$NAME"
"$UPGATE" upload -q "$WORK/$NAME" "$NODE_URL/demo/reports/$NAME" >"$WORK/upload.json" ||
  die "upload failed ($?)"
head -c 300000 /dev/urandom >"$WORK/photo.jpg"
"$UPGATE" upload -q "$WORK/photo.jpg" "$NODE_URL/demo/photos/photo.jpg" >>"$WORK/upload.json" ||
  die "upload failed ($?)"
LINK="$NODE_URL/demo/reports/$NAME"

# 1. The DOM as Chromium rendered it.
chromium_run dom --dump-dom "$APP_URL/" >"$WORK/dom.html" || die "chromium --dump-dom failed"
grep -q "<table id=\"uploads\"" "$WORK/dom.html" || die "the page has no uploads table"
grep -qF ">$NAME</a>" "$WORK/dom.html" || die "the file name $NAME is not on the page"
grep -qF "href=\"$LINK\"" "$WORK/dom.html" || die "no link to $LINK on the page"
grep -qF ">photo.jpg</a>" "$WORK/dom.html" || die "the second upload is not on the page"
echo "browser-check: the rendered page lists $NAME linked to $LINK"

# 2. The link works: it downloads the file that was uploaded.
curl -sS --fail -o "$WORK/downloaded" "$LINK" || die "the page's link does not download"
cmp -s "$WORK/downloaded" "$WORK/$NAME" || die "the linked file differs from the upload"
echo "browser-check: the link downloads the uploaded bytes"

# 3. A screenshot, for people.
mkdir -p "$(dirname "$SHOT")"
rm -f "$SHOT"
chromium_run shot --screenshot="$SHOT" --window-size=1100,560 "$APP_URL/" >/dev/null ||
  die "chromium --screenshot failed"
[ -s "$SHOT" ] || die "no screenshot at $SHOT"
[ "$(head -c 8 "$SHOT" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || die "$SHOT is not a PNG"
echo "browser-check: OK (screenshot $SHOT, $(stat -c %s "$SHOT") bytes)"
