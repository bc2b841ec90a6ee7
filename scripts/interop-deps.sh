#!/usr/bin/env bash
# Run by scripts/test-deps.sh (`make test-deps`, first step of `make test`): puts the real tus
# clients that tests/tus_interop.rs drives into a cache under target/interop, from the package
# registries, only when they are missing or of another version. The clients are never written
# here: the point of the interop tests is that someone else's code talks to the node.
#   venv/          python3 -m venv + pip: tuspy
#   node_modules/  npm: tus-js-client, @uppy/core, @uppy/tus, esbuild
#   uppy-tus.js    @uppy/core + @uppy/tus bundled by esbuild for the browser page (offline)
# UPGATE_INTEROP_DIR moves the cache (the test reads the same variable).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${UPGATE_INTEROP_DIR:-$ROOT/target/interop}"
TUSPY_VERSION=1.1.0
NPM_PACKAGES=(tus-js-client@4.3.1 @uppy/core@6.0.1 @uppy/tus@6.0.0 esbuild@0.28.2)
ENTRY="$ROOT/tests/interop/uppy_entry.js"

die() {
  echo "interop-deps: error: $*" >&2
  exit 1
}

# apt_for COMMAND PACKAGE: installs the Debian PACKAGE when COMMAND is not there (root only).
apt_for() {
  local what=$1 pkg=$2
  [ "$(id -u)" -eq 0 ] || die "$what is missing; run as root: apt-get install -y $pkg"
  echo "interop-deps: installing $pkg ($what is missing)"
  timeout 600 apt-get update -q
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q "$pkg"
}

command -v python3 >/dev/null || apt_for python3 python3
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_for "python3's venv" python3-venv
command -v node >/dev/null || apt_for node nodejs
command -v npm >/dev/null || apt_for npm npm
mkdir -p "$DIR"

# tuspy in its own venv (never the system's site-packages).
if ! "$DIR/venv/bin/python" -c "import importlib.metadata as m, sys; \
    sys.exit(m.version('tuspy') != '$TUSPY_VERSION')" 2>/dev/null; then
  echo "interop-deps: installing tuspy==$TUSPY_VERSION into $DIR/venv"
  rm -rf "$DIR/venv"
  timeout 120 python3 -m venv "$DIR/venv" || die "python3 -m venv failed"
  timeout 600 "$DIR/venv/bin/pip" install --quiet --timeout 60 "tuspy==$TUSPY_VERSION" >"$DIR/pip.log" 2>&1 ||
    die "pip install tuspy==$TUSPY_VERSION failed ($(tail -n 3 "$DIR/pip.log"))"
fi

# The npm packages, at the pinned versions (package.json under $DIR records them).
npm_current() {
  local spec name version
  for spec in "${NPM_PACKAGES[@]}"; do
    name=${spec%@*}
    version=${spec##*@}
    grep -q "\"version\": \"$version\"" "$DIR/node_modules/$name/package.json" 2>/dev/null || return 1
  done
}
if ! npm_current; then
  echo "interop-deps: installing ${NPM_PACKAGES[*]} into $DIR/node_modules"
  timeout 600 npm install --prefix "$DIR" --no-audit --no-fund --ignore-scripts --loglevel=error \
    --fetch-timeout=60000 "${NPM_PACKAGES[@]}" >"$DIR/npm.log" 2>&1 ||
    die "npm install failed ($(tail -n 3 "$DIR/npm.log"))"
  npm_current || die "npm did not install ${NPM_PACKAGES[*]}"
  rm -f "$DIR/uppy-tus.js"
fi

# The browser bundle: remade when the entry is newer than it.
if [ ! -s "$DIR/uppy-tus.js" ] || [ "$ENTRY" -nt "$DIR/uppy-tus.js" ]; then
  echo "interop-deps: bundling @uppy/core + @uppy/tus into $DIR/uppy-tus.js"
  cp "$ENTRY" "$DIR/uppy_entry.js" # beside node_modules, where its imports resolve
  (cd "$DIR" && timeout 120 node node_modules/esbuild/bin/esbuild uppy_entry.js --bundle \
    --format=iife --target=es2020 --minify --log-level=warning --outfile="$DIR/uppy-tus.js") ||
    die "esbuild could not bundle $ENTRY"
fi
echo "interop-deps: tuspy $TUSPY_VERSION, ${NPM_PACKAGES[*]} in $DIR"
