#!/bin/bash
# What the post-callback (and its outbox record) costs a small upload: one node (threads = 2,
# fsync = false) with app `bench` registered with a pre-callback only (POST=no) or with both
# (POST=yes), the load generator's 1 KiB scenario for 6 s (64 connections), and uploads/s and
# node CPU per upload (docs/performance.md, "Reading it").
#
#   benches/peers/no-post.sh yes; benches/peers/no-post.sh no     (alternate a few times)
POST=${1:?yes or no}
# shellcheck source=one-node.sh
source "$(dirname "${BASH_SOURCE[0]}")/one-node.sh"
one_node false
FORM="appid=bench&callback_url_pre=http://$CB/pre"
[ "$POST" = yes ] && FORM="$FORM&callback_url_post=http://$CB/post"
curl -s -X POST "$U/upload/register" -d "$FORM" >/dev/null
"$BIN" bench --target "$U" -c 64 -d 1 --size 1k --appid bench >/dev/null
"$BIN" bench --json --target "$U" -c 64 -d 6 --size 1k --appid bench --watch-pid "$NP" | tail -1 |
    python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print('post=$POST', 'uploads/s', d['rps'], 'node CPU ms per upload', round(d['cpu_s']*1000/max(d['ok'],1),3), 'errors', d['errors'])"
kill "$NP" "$CBP"; wait 2>/dev/null
# The data dir is left for the OS's temp cleanup: deleting many files at once slows file
# creation for the next run (docs/performance.md, "Traps").
