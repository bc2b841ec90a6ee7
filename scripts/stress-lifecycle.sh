#!/usr/bin/env bash
# `make stress-lifecycle`: the server_lifecycle tests over and over, while resource_bounds and
# upload_flow loop beside them (10 000-connection storms, TIME_WAIT pressure, both cores busy),
# for STRESS_SECS (default 600). Prints the runs and failures; keeps each failing run's output
# as target/stress/fail-N.log. Everything talks to 127.0.0.1 only and stops by itself.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${STRESS_SECS:-600}
out=target/stress
mkdir -p "$out"
cargo test --all-features --no-run -q --test server_lifecycle --test resource_bounds --test upload_flow || exit 1
end=$(( $(date +%s) + secs ))
(
  while [ "$(date +%s)" -lt "$end" ]; do
    cargo test -q --all-features --test resource_bounds --test upload_flow -- --test-threads=4 >/dev/null 2>&1
  done
) &
load=$!
runs=0; fails=0
while [ "$(date +%s)" -lt "$end" ]; do
  runs=$((runs + 1))
  if ! cargo test -q --all-features --test server_lifecycle -- --test-threads=4 >"$out/last.log" 2>&1; then
    fails=$((fails + 1))
    cp "$out/last.log" "$out/fail-$fails.log"
  fi
done
kill "$load" 2>/dev/null
wait 2>/dev/null
echo "stress-lifecycle: $runs runs of server_lifecycle in $secs s beside resource_bounds and upload_flow: $fails failed"
[ "$fails" -eq 0 ]
