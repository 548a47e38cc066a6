#!/usr/bin/env python3
"""e2e helper: a copy of an audit file with one change.
Usage: tamper.py SRC KIND OUT [LINE]; KIND: byte | delete | swap | truncate | droplast
"""
import re, sys
src, kind, out = sys.argv[1:4]
k = int(sys.argv[4]) if len(sys.argv) > 4 else 0
lines = open(src, "rb").read().split(b"\n")[:-1]
if kind == "byte":
    # one digit of the milliseconds in "time": still a valid JSON record
    line = lines[k - 1]
    m = re.search(rb'"time":"[^"]*\.(\d)', line)
    i = m.start(1)
    lines[k - 1] = line[:i] + str((int(line[i:i + 1]) + 1) % 10).encode() + line[i + 1:]
elif kind == "delete":
    del lines[k - 1]
elif kind == "swap":
    lines[k - 1], lines[k] = lines[k], lines[k - 1]
data = b"\n".join(lines) + b"\n"
if kind == "truncate":
    data = data[:-1]
if kind == "droplast":
    data = b"\n".join(lines[:-1]) + b"\n"
open(out, "wb").write(data)
