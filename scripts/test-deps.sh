#!/usr/bin/env bash
# `make test-deps` (run first by `make test` and `make browser-check`): installs the system
# packages the tests need, the Debian packages listed in .ci/packages (the single list), and only
# those that are missing. Idempotent: when everything is there it installs nothing and prints one
# line. Then checks that the commands the tests run exist: curl, promtool (tests/operations.rs),
# etcd (tests/etcd_registry.rs)
# and chromium (scripts/browser-check.sh, tests/tus_interop.rs; `chromium-headless-shell` alone
# is not enough). Last, the real tus clients of tests/tus_interop.rs from PyPI and npm into
# target/interop (scripts/interop-deps.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIST="$ROOT/.ci/packages"

die() {
  echo "test-deps: error: $*" >&2
  exit 1
}

[ -r "$LIST" ] || die "no package list at $LIST"
command -v dpkg-query >/dev/null ||
  die "not a Debian-based system (no dpkg-query): install the packages in .ci/packages yourself"

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

wanted=()
missing=()
while read -r pkg _; do
  case "$pkg" in '' | '#'*) continue ;; esac
  wanted+=("$pkg")
  installed "$pkg" || missing+=("$pkg")
done <"$LIST"

if [ ${#missing[@]} -eq 0 ]; then
  echo "test-deps: all installed (${wanted[*]})"
else
  [ "$(id -u)" -eq 0 ] ||
    die "missing Debian packages: ${missing[*]}; run as root: apt-get update && apt-get install -y ${missing[*]}"
  echo "test-deps: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  for pkg in "${missing[@]}"; do
    installed "$pkg" || die "apt-get did not install $pkg"
  done
fi

# What the tests call by name.
absent=()
command -v curl >/dev/null || absent+=(curl)
command -v promtool >/dev/null || absent+=("promtool (package prometheus)")
command -v etcd >/dev/null || absent+=("etcd (package etcd-server)")
command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
  absent+=("chromium or chromium-browser (package chromium)")
if [ ${#absent[@]} -gt 0 ]; then
  printf -v names '%s, ' "${absent[@]}"
  die "commands the tests need are not on PATH: ${names%, }"
fi

bash "$ROOT/scripts/garage-deps.sh"
bash "$ROOT/scripts/interop-deps.sh"
