#!/usr/bin/env python3
"""e2e helper: an independent check of audit files as one hash chain (hashlib, json). Prints
"ok LINES LAST_SEQ LAST_HASH BOOTS LINKED_BOOTS" or "broken FILE:LINE WHY".
Usage: chain_check.py FILE...
"""
import hashlib, json, sys
GENESIS = "0" * 64
prev_hash = None
prev_seq = None
boots = []
linked = 0
n = 0
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        print(f"broken {path}:end no final newline"); sys.exit()
    for i, line in enumerate(data.split(b"\n")[:-1], 1):
        n += 1
        cut = line.rfind(b',"hash":"')
        rec = json.loads(line)
        if cut < 0 or hashlib.sha256(line[:cut]).hexdigest() != rec["hash"]:
            print(f"broken {path}:{i} seal"); sys.exit()
        if prev_hash is None:
            if rec["prev"] != GENESIS or rec["seq"] != 1:
                print(f"broken {path}:{i} does not start at the genesis"); sys.exit()
        elif rec["prev"] != prev_hash or rec["seq"] != prev_seq + 1:
            print(f"broken {path}:{i} link"); sys.exit()
        boot = rec["event_id"].rsplit("-", 1)[0]
        if not boots or boots[-1] != boot:
            if boots:
                linked += 1
            boots.append(boot)
        prev_hash = hashlib.sha256(line).hexdigest()
        prev_seq = rec["seq"]
print(f"ok {n} {prev_seq} {prev_hash} {len(boots)} {linked} {len(set(boots))}")
