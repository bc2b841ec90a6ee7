#!/usr/bin/env bash
# Run by `make test-deps` (scripts/test-deps.sh): makes sure Garage, the S3-compatible object
# store that tests/support/garage.rs starts as the origin of the S3 store tests, is installed.
# Garage is a separate program (AGPL) that the tests run as a child process; it is never linked
# into upgate. It is not packaged by Debian, so it comes from crates.io, built from source with
# its own lock file (~7 minutes on 2 cores), into target/tools. Idempotent: when a garage binary
# is found on PATH, in ~/.cargo/bin or in target/tools/bin (the places tests/support/garage.rs
# looks, in that order) it installs nothing and prints one line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="2.5.0"
TOOLS="$ROOT/target/tools"

die() {
  echo "garage-deps: error: $*" >&2
  exit 1
}

works() {
  "$1" --version >/dev/null 2>&1
}

for candidate in "$(command -v garage || true)" "$HOME/.cargo/bin/garage" "$TOOLS/bin/garage"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && works "$candidate"; then
    echo "garage-deps: garage present ($candidate: $("$candidate" --version 2>/dev/null | head -n1))"
    exit 0
  fi
done

command -v cargo >/dev/null || die "garage is missing and cargo is not on PATH to build it"
echo "garage-deps: installing garage $VERSION into $TOOLS (cargo install, builds from source: ~7 minutes)"
cargo install garage --version "$VERSION" --locked --root "$TOOLS"
works "$TOOLS/bin/garage" || die "cargo install did not leave a working $TOOLS/bin/garage"
echo "garage-deps: installed $("$TOOLS/bin/garage" --version 2>/dev/null | head -n1)"
