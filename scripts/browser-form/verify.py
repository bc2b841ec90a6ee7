#!/usr/bin/env python3
"""Helpers of scripts/browser-form-check.sh.

  verify.py prng SEED SIZE OUT      the bytes common.js's prng(SEED, SIZE) makes, into OUT
  verify.py result DOM              the JSON a page wrote into <pre id="result">, on one line
  verify.py get JSON PATH           a field of that JSON (PATH like exact.status), as text
"""
import html
import json
import re
import struct
import sys


def prng(seed, size):
    x = seed & 0xFFFFFFFF
    out = bytearray()
    while len(out) < size:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += struct.pack("<I", x)
    return bytes(out[:size])


def main(argv):
    if argv[1] == "prng":
        with open(argv[4], "wb") as f:
            f.write(prng(int(argv[2]), int(argv[3])))
    elif argv[1] == "result":
        with open(argv[2], encoding="utf-8") as f:
            m = re.search(r'<pre id="result">(.*?)</pre>', f.read(), re.S)
        if not m:
            sys.exit("no <pre id=\"result\"> in the DOM: the page did not finish")
        print(json.dumps(json.loads(html.unescape(m.group(1)))))
    elif argv[1] == "get":
        with open(argv[2], encoding="utf-8") as f:
            v = json.load(f)
        for part in argv[3].split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v is None:
            print("")
        elif isinstance(v, (dict, list, bool)):
            print(json.dumps(v))
        else:
            print(v)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
