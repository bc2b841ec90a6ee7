#!/usr/bin/env bash
# `make browser-check` (part of `make test`), after scripts/browser-check.sh: uploads from a
# browser straight to the node, in headless Chromium, from pages of an origin other than the
# node's (a static server; the demo app, registered with that origin in cors_origins, signs the
# upload tokens):
#   (a) XMLHttpRequest + FormData to POST /upload/form/{appid}, progress events recorded; a
#       token for one key, and one for the prefix uploads/ with the key uploads/${filename};
#   (b) fetch + FormData with `Authorization: Upload-Token …` (a CORS preflight); a raw PUT with
#       the token in that header; an altered token and a token for another key (403 bad_token);
#   (c) Uppy from npm, used offline from the page's origin: its XHRUpload plugin, and its AwsS3
#       plugin posting the {url, fields} form the demo app's /s3/params gives;
#   (d) a page from an origin the app did not register: refused, nothing stored;
#   (e) the demo app's own page (`#sample` sends its sample file).
# The pages make their files from a seeded PRNG (scripts/browser-form/common.js); the script
# makes the same bytes in Python and compares them with what the node serves (SHA-256), and
# checks that the demo app was told about each upload. Every check runs; the failures are
# listed at the end.
# shellcheck source=lib.sh source-path=SCRIPTDIR disable=SC2119
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UPPY_VERSION=6.0.1
NPM_DIR="${UPGATE_NPM_DIR:-$ROOT/target/npm}"
PAGES="$ROOT/scripts/browser-form"
UPPY_JS="$NPM_DIR/node_modules/uppy/dist/uppy.min.js"
FAILURES=()

verify() { python3 "$PAGES/verify.py" "$@"; }

fail() {
  FAILURES+=("$*")
  echo "browser-form-check: FAIL: $*" >&2
}

# Uppy once into the cache under target/npm; later runs use it offline.
if [ ! -f "$UPPY_JS" ] ||
  ! grep -q "\"version\": \"$UPPY_VERSION\"" "$NPM_DIR/node_modules/uppy/package.json"; then
  command -v npm >/dev/null || die "npm is needed once, to put uppy@$UPPY_VERSION into $NPM_DIR"
  echo "browser-form-check: installing uppy@$UPPY_VERSION into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  timeout 300 npm install --prefix "$NPM_DIR" --no-audit --no-fund --ignore-scripts \
    --loglevel=error "uppy@$UPPY_VERSION" >"$WORK/npm.log" 2>&1 ||
    die "npm install uppy@$UPPY_VERSION failed ($(tail -n 3 "$WORK/npm.log"))"
  [ -f "$UPPY_JS" ] || die "uppy@$UPPY_VERSION has no dist/uppy.min.js"
fi

build
start_node
SITE="$WORK/site"
mkdir -p "$SITE"
cp "$PAGES"/*.html "$PAGES/common.js" "$UPPY_JS" "$SITE/"
start_static "$SITE" other
OTHER_URL=$STATIC_URL # an origin nobody registered
start_static "$SITE" site
SITE_URL=$STATIC_URL
start_app --appid demo --cors-origin "$SITE_URL"
echo "browser-form-check: node $NODE_URL, app $APP_URL, pages $SITE_URL (unregistered: $OTHER_URL)"

# page NAME QUERY [BASE]: opens BASE/NAME.html?app=…&QUERY; the page's result goes to
# $WORK/NAME.json. Returns non-zero (after saying why) when the page did not finish.
page() {
  local name=$1 base=${3:-$SITE_URL}
  chromium_run "$name" --virtual-time-budget=30000 --dump-dom \
    "$base/$name.html?app=$APP_URL&$2" >"$WORK/$name.dom" ||
    { fail "chromium failed on $name.html"; return 1; }
  verify result "$WORK/$name.dom" >"$WORK/$name.json" ||
    { fail "$name.html did not finish: $(head -c 400 "$WORK/$name.dom")"; return 1; }
  local err
  err=$(verify get "$WORK/$name.json" error)
  [ -z "$err" ] || { fail "$name.html stopped: $err"; return 1; }
  echo "browser-form-check: $name.html: $(head -c 1500 "$WORK/$name.json")"
}

# expect PAGE FIELD VALUE: the page's result has FIELD (a dotted path) equal to VALUE.
expect() {
  local got
  got=$(verify get "$WORK/$1.json" "$2")
  [ "$got" = "$3" ] || fail "$1.html: $2 is '$got', expected '$3'"
}

# expect_some PAGE FIELD: FIELD is a number of at least 1.
expect_some() {
  local got
  got=$(verify get "$WORK/$1.json" "$2")
  if ! [[ "$got" =~ ^[0-9]+$ ]] || [ "$got" -lt 1 ]; then
    fail "$1.html: $2 is '$got', expected >= 1"
  fi
}

# stored PATH SEED SIZE: the node serves /demo/PATH with exactly the PRNG's bytes, and the demo
# app was told about it (post-callback).
stored() {
  local path=$1 seed=$2 size=$3 want got
  verify prng "$seed" "$size" "$WORK/expected"
  if ! curl -sS --fail --max-time 30 -o "$WORK/got" "$NODE_URL/demo/$path"; then
    fail "GET $NODE_URL/demo/$path failed"
    return
  fi
  want=$(sha256sum <"$WORK/expected" | cut -d' ' -f1)
  got=$(sha256sum <"$WORK/got" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "/demo/$path: sha256 $got, expected $want ($size bytes of seed $seed)"
  curl -sS --max-time 10 "$APP_URL/uploads.json" | grep -qF "\"path\": \"$path\"" ||
    fail "the demo app was not told about $path"
  [ "$got" != "$want" ] || echo "browser-form-check: /demo/$path holds the page's $size bytes"
}

# absent PATH: nothing is stored at /demo/PATH.
absent() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$NODE_URL/demo/$1")
  [ "$code" = 404 ] || fail "GET /demo/$1 answered $code, expected 404 (nothing stored)"
}

# preflight ORIGIN: the node's answer to the browser's question before a form upload with an
# Authorization header, as "status allow-origin allow-headers".
preflight() {
  curl -sS -o /dev/null -D "$WORK/preflight.head" --max-time 10 -X OPTIONS \
    -H "Origin: $1" -H "Access-Control-Request-Method: POST" \
    -H "Access-Control-Request-Headers: authorization" "$NODE_URL/upload/form/demo" ||
    fail "OPTIONS /upload/form/demo failed"
  python3 - "$WORK/preflight.head" <<'PY'
import sys
lines = open(sys.argv[1], encoding="latin-1").read().splitlines()
status = lines[0].split(" ")[1] if lines and " " in lines[0] else "?"
fields = {}
for line in lines[1:]:
    if ":" in line:
        k, v = line.split(":", 1)
        fields[k.strip().lower()] = v.strip()
print(status, fields.get("access-control-allow-origin", "-"),
      fields.get("access-control-allow-headers", "-").lower().replace(" ", ""))
PY
}

read -r CODE ORIGIN HEADERS <<<"$(preflight "$SITE_URL")"
if [ "$CODE" != 204 ] || [ "$ORIGIN" != "$SITE_URL" ] || [[ ",$HEADERS," != *,authorization,* ]]; then
  fail "preflight from $SITE_URL: $CODE, allow-origin $ORIGIN, allow-headers $HEADERS"
fi
read -r CODE ORIGIN _ <<<"$(preflight "$OTHER_URL")"
if [ "$CODE" != 403 ] || [ "$ORIGIN" != - ]; then
  fail "preflight from the unregistered $OTHER_URL: $CODE, allow-origin $ORIGIN (expected 403)"
fi

# (a) XMLHttpRequest, progress events.
if page xhr "name=xhr-exact.bin&seed=11&size=1048579&name2=xhr-prefix.bin&seed2=12&size2=65537"; then
  expect xhr exact.status 201
  expect xhr exact.body.path uploads/xhr-exact.bin
  expect xhr exact.body.size 1048579
  expect_some xhr exact.progress.events
  expect_some xhr exact.progress.computable
  expect xhr exact.progress.loaded "$(verify get "$WORK/xhr.json" exact.progress.total)"
  # shellcheck disable=SC2016 # the literal ${filename} the node replaces
  expect xhr prefix.key 'uploads/${filename}'
  expect xhr prefix.status 201
  expect xhr prefix.body.path uploads/xhr-prefix.bin
  stored uploads/xhr-exact.bin 11 1048579
  stored uploads/xhr-prefix.bin 12 65537
fi

# (b) fetch with a preflight; the token on a raw upload; tokens the edge refuses.
if page fetch "name=fetch.bin&seed=21&size=300001&raw_name=raw.bin&raw_seed=22&raw_size=200003&bad_name=bad.bin&other_name=other.bin"; then
  expect fetch preflighted.status 201
  expect fetch preflighted.type cors
  expect fetch preflighted.body.path uploads/fetch.bin
  expect fetch raw.status 201
  expect fetch badSignature.status 403
  expect fetch badSignature.body.error bad_token
  expect fetch wrongKey.status 403
  expect fetch wrongKey.body.error bad_token
  stored uploads/fetch.bin 21 300001
  stored uploads/raw.bin 22 200003
  absent uploads/bad.bin
  absent uploads/other.bin
fi

# (c) Uppy: XHRUpload, and AwsS3 fed by the app's /s3/params.
if page uppy "name=uppy-xhr.bin&seed=31&size=500009&s3_name=uppy-s3.bin&s3_seed=32&s3_size=123457"; then
  expect uppy version "$UPPY_VERSION"
  expect uppy xhr.ok true
  expect uppy xhr.status 201
  expect_some uppy xhr.progressEvents
  expect uppy s3.ok true
  expect_some uppy s3.progressEvents
  stored uploads/uppy-xhr.bin 31 500009
  stored uploads/uppy-s3.bin 32 123457
fi

# (d) An origin the app did not register: the preflight is refused, the upload never sent.
TARGET=$(curl -sS --fail --max-time 10 "$APP_URL/token?name=denied.bin") || die "GET /token failed"
QUERY=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$TARGET")
if page denied "target=$QUERY" "$OTHER_URL"; then
  expect denied status 0
  [[ "$(verify get "$WORK/denied.json" rejected)" == TypeError* ]] ||
    fail "denied.html: the upload was not refused by the browser"
  absent uploads/denied.bin
fi

# (e) The demo app's own page: its script sends a sample file with a progress bar, then lists it.
if chromium_run demo --virtual-time-budget=30000 --dump-dom "$APP_URL/#sample" >"$WORK/demo.dom"; then
  SAMPLE=$(grep -oE '<li class="upload done"[^>]*data-status="201"' "$WORK/demo.dom" || true)
  LINK=$(grep -oE "<a class=\"stored\" href=\"$NODE_URL/demo/uploads/sample-[0-9]+\\.txt\"" \
    "$WORK/demo.dom" | head -n 1 | sed -E 's/.*href="([^"]+)"/\1/' || true)
  if [ -z "$SAMPLE" ] || [ -z "$LINK" ]; then
    fail "the demo page did not store its sample: $(grep -oE '<ol id="results">.*</ol>' "$WORK/demo.dom" | head -c 600)"
  else
    grep -qF "<a class=\"file\" href=\"$LINK\"" "$WORK/demo.dom" ||
      fail "the demo page does not list $LINK among the uploads"
    [[ "$SAMPLE" == *data-progress-events=* ]] || fail "the demo page saw no progress event"
    curl -sS --fail --max-time 10 -o "$WORK/sample.txt" "$LINK" || fail "GET $LINK failed"
    grep -q "^A sample file made by the upgate demo page" "$WORK/sample.txt" ||
      fail "$LINK does not hold the page's sample"
    echo "browser-form-check: the demo page stored and listed $LINK"
  fi
else
  fail "chromium failed on the demo page"
fi

if [ ${#FAILURES[@]} -gt 0 ]; then
  echo "browser-form-check: ${#FAILURES[@]} check(s) failed:" >&2
  printf '  - %s\n' "${FAILURES[@]}" >&2
  exit 1
fi
echo "browser-form-check: OK"
