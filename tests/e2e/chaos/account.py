#!/usr/bin/python3
"""Accounting of tests/e2e/70-chaos.sh: where did every accepted message go?

Reads the load driver's results (load.py), the maildirs of pfa, pfb, pfc and pfd, pfa's
queue (postqueue -j) and pfa's mail log, and puts every message that pfa accepted (250
with a queue id) into exactly one of: delivered (a copy at the receiver its recipient
demands), queued (still in pfa's queue), bounced (a DSN in the sender's maildir at pfa),
or lost (none of these). Independently of that it counts:

    insecure    a copy at pfc (the MX without TLS), a copy at pfb or pfd that did not
                arrive over TLS (their Received header says ESMTPS), pfa logging a chaos
                recipient as sent by a plain transport (smtp, relay), or as sent by
                nta-dane / nta-fallback without a "Verified TLS connection" line of the
                same process before it
    unsigned    a copy that left pfa (pfb, pfd) without a DKIM-Signature of
                d=sender.lab.test that verifies (python3-dkim, with the key record the
                shell looked up through the lab's resolver)
    misrouted   a copy at a receiver other than the one its recipient demands, or a
                sent line for the wrong transport or relay
    unexpected_bounce   a DSN for a recipient that only the receiver's refusal should bounce
    refused_kept        a message whose every attempt was refused, yet a copy or queue
                entry exists (the client keeps it too: it would arrive twice)
    duplicates  messages delivered more than once
    unlogged    (with --audit) a message pfa accepted over SMTP whose queue id has no
                message_received or no signed line in the daemon's audit file: NEN 7513
                allows no processing without a trail, so the daemon must refuse (4xx)
                while it cannot write the file

Prints "NAME COUNT" lines, then at most 10 "detail CATEGORY ID WHY" lines per category.
Exit status 0 when it could do the accounting, 2 when it could not (missing input).
python3-dkim is the lab's own package (E2E_PKGS_DKIM); run with /usr/bin/python3.
"""

import argparse
import email.parser
import email.policy
import json
import os
import re
import sys

# where each kind of recipient must end up (load.py's MIX)
RECEIVER = {"dane": "pfb", "fallback": "pfd", "own": "pfa", "reject": None, "bogus": None}
# pfa's log: the transport (syslog_name) and relay that a "status=sent" line must name
SENT = {
    "dane": ("nta-dane/smtp", "mx.nta.lab.test[127.0.10.25]:25"),
    "fallback": ("nta-fallback/smtp", "fallback.lab.test[127.0.10.27]:25"),
    "own": ("virtual", None),
}
# transports that deliver without enforced TLS: a chaos message sent by one is insecure
PLAIN_TRANSPORTS = {"smtp", "relay", "lmtp"}
LEFT = ("pfb", "pfd")
DETAILS_PER_CATEGORY = 10

LOG_RE = re.compile(
    r"postfix/([\w/.-]+)\[(\d+)\]: ([0-9A-Za-z]+): to=<([^>]+)>, relay=([^,]+), .*status=(\w+)"
)
# smtp_tls_loglevel = 1: one line per TLS connection, before the delivery lines of the
# same process; "Verified" = the peer's certificate matched (DANE TLSA, or the CA and name)
TLS_RE = re.compile(r"postfix/([\w/.-]+)\[(\d+)\]: (\w+) TLS connection established to ")
# the transports whose deliveries must have gone over a Verified TLS connection
VERIFIED_TRANSPORTS = {"nta-dane/smtp", "nta-fallback/smtp"}


def load_results(paths):
    msgs = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 7:
                    continue
                mid, kind, rcpt, status, qid, attempts, last = parts[:7]
                msgs[mid] = {"kind": kind, "rcpt": rcpt.lower(), "status": status, "qid": qid,
                             "attempts": attempts, "last": last}
    return msgs


def scan_maildir(path, id_re):
    """Yields (file, raw bytes, headers, ids, is_dsn) for each delivered file."""
    new = os.path.join(path, "inbox", "new")
    if not os.path.isdir(new):
        return
    parser = email.parser.BytesParser(policy=email.policy.compat32)
    for name in sorted(os.listdir(new)):
        fp = os.path.join(new, name)
        with open(fp, "rb") as f:
            raw = f.read()
        hdrs = parser.parsebytes(raw, headersonly=True)
        ids = {m.decode() for m in id_re.findall(raw)}
        if not ids:
            continue
        ctype = (hdrs.get("Content-Type") or "").lower()
        is_dsn = "multipart/report" in ctype and "delivery-status" in ctype
        yield fp, raw, hdrs, ids, is_dsn


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--run", required=True)
    p.add_argument("--results", action="append", required=True)
    p.add_argument("--maildir", action="append", required=True, help="NAME=PATH")
    p.add_argument("--queue", required=True, help="postqueue -j output of pfa")
    p.add_argument("--maillog", required=True, help="pfa's mail log")
    p.add_argument("--dkim-txt", required=True, help="dig +short output of the key record")
    p.add_argument("--audit", help="the daemon's audit file (hash-chained JSON lines)")
    args = p.parse_args()

    try:
        import dkim  # python3-dkim
    except ImportError:
        print("account.py: python3-dkim is not importable (run with /usr/bin/python3)", file=sys.stderr)
        return 2
    with open(args.dkim_txt, encoding="utf-8") as f:
        key_txt = "".join(re.findall(r'"([^"]*)"', f.read())).encode()
    if b"v=DKIM1" not in key_txt:
        print("account.py: no DKIM key record given", file=sys.stderr)
        return 2

    def dnsfunc(name, timeout=5):
        return key_txt

    msgs = load_results(args.results)
    by_rcpt = {m["rcpt"]: mid for mid, m in msgs.items()}
    id_re = re.compile(re.escape(args.run.encode()) + rb"-[0-9a-z]+")
    counts = {k: 0 for k in ("accepted", "delivered", "queued", "bounced", "lost", "insecure",
                              "unsigned", "misrouted", "unexpected_bounce", "refused", "unsent",
                              "refused_kept", "duplicates", "left_copies", "verified",
                              "sent_verified_tls", "unlogged",
                              "local_copies")}
    details = {}

    def detail(cat, mid, why):
        counts[cat] += 1
        why = " ".join(why.split())
        lst = details.setdefault(cat, [])
        if len(lst) < DETAILS_PER_CATEGORY:
            lst.append(f"detail {cat} {mid} {why}")

    copies = {}  # mid -> list of receivers holding a copy for its recipient
    bounced = set()
    for spec in args.maildir:
        name, path = spec.split("=", 1)
        for fp, raw, hdrs, ids, is_dsn in scan_maildir(path, id_re):
            base = os.path.basename(fp)
            if is_dsn:
                if name != "pfa":
                    detail("misrouted", ",".join(sorted(ids)), f"DSN at {name}: {base}")
                    continue
                bounced.update(ids)
                continue
            mid = (hdrs.get("X-Chaos-Id") or "").strip()
            if mid not in msgs:
                mid = sorted(ids)[0]
            m = msgs.get(mid)
            if m is None:
                detail("misrouted", mid, f"unknown id at {name}: {base}")
                continue
            to = (hdrs.get("Delivered-To") or "").strip().lower()
            copies.setdefault(mid, []).append(name)
            if name == "pfc":
                detail("insecure", mid, f"at pfc (MX without TLS): {base}")
            if RECEIVER.get(m["kind"]) != name or to != m["rcpt"]:
                detail("misrouted", mid, f"{m['kind']} copy at {name} for <{to}>: {base}")
            if name in LEFT:
                counts["left_copies"] += 1
                received = hdrs.get_all("Received") or []
                if not received or "ESMTPS" not in received[0]:
                    first = " ".join(" ".join(received[:1]).split())
                    detail("insecure", mid, f"at {name} without TLS: {first[:120]}")
                sigs = [s for s in (hdrs.get_all("DKIM-Signature") or [])
                        if re.search(r"\bd=sender\.lab\.test\s*;", s)]
                if not sigs:
                    detail("unsigned", mid, f"no DKIM-Signature d=sender.lab.test at {name}: {base}")
                else:
                    try:
                        ok = dkim.verify(raw, dnsfunc=dnsfunc)
                    except Exception as e:  # dkim raises on malformed signatures
                        ok = False
                        print(f"account.py: dkim error on {fp}: {e}", file=sys.stderr)
                    if ok:
                        counts["verified"] += 1
                    else:
                        detail("unsigned", mid, f"DKIM-Signature does not verify at {name}: {base}")
            elif name == "pfa":
                counts["local_copies"] += 1

    queued = {}
    with open(args.queue, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            q = json.loads(line)
            for r in q.get("recipients", []):
                mid = by_rcpt.get(str(r.get("address", "")).lower())
                if mid:
                    queued[mid] = q.get("queue_name", "?")

    tls = {}  # smtp process -> trust level of its current TLS connection
    with open(args.maillog, encoding="utf-8", errors="replace") as f:
        for line in f:
            mt = TLS_RE.search(line)
            if mt:
                tls[mt.group(2)] = mt.group(3)
                continue
            mt = LOG_RE.search(line)
            if not mt:
                continue
            tag, pid, _qid, rcpt, relay, status = mt.groups()
            # the connection's trust level belongs to this delivery attempt (TLS
            # connections are not reused: smtp_tls_connection_reuse = no)
            level = tls.pop(pid, None)
            if status != "sent":
                continue
            mid = by_rcpt.get(rcpt.lower())
            if mid is None:
                continue
            kind = msgs[mid]["kind"]
            want = SENT.get(kind)
            if tag.split("/")[0] in PLAIN_TRANSPORTS or tag in PLAIN_TRANSPORTS:
                detail("insecure", mid, f"{kind} sent by postfix/{tag} relay={relay}")
            elif want is None or tag != want[0] or (want[1] and relay != want[1]):
                detail("misrouted", mid, f"{kind} sent by postfix/{tag} relay={relay}")
            if tag in VERIFIED_TRANSPORTS:
                if level == "Verified":
                    counts["sent_verified_tls"] += 1
                else:
                    detail("insecure", mid, f"{kind} sent by postfix/{tag}[{pid}] over a "
                           f"{level or 'no'} TLS connection (not Verified)")

    trail = None  # (queue id, event type) pairs in the audit file
    if args.audit:
        trail = set()
        with open(args.audit, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn line: audit verify judges the file
                qid = (rec.get("detail") or {}).get("queue_id")
                if qid:
                    trail.add((qid, rec.get("event_type")))

    for mid, m in msgs.items():
        held = copies.get(mid, [])
        if trail is not None and m["status"] == "accepted" and m["qid"] not in ("-", "maildrop"):
            missing = [t for t in ("message_received", "signed") if (m["qid"], t) not in trail]
            if missing:
                detail("unlogged", mid, f"accepted as {m['qid']} without {'/'.join(missing)} in the audit file")
        if m["status"] != "accepted":
            counts["refused" if m["status"] == "refused" else "unsent"] += 1
            if held or mid in queued or mid in bounced:
                detail("refused_kept", mid, f"every attempt refused ({m['last']}) but found: "
                       f"copies={held} queue={queued.get(mid, '-')} dsn={mid in bounced}")
            continue
        counts["accepted"] += 1
        if len(held) > 1:
            detail("duplicates", mid, f"copies at {held}")
        want = RECEIVER.get(m["kind"])
        if m["kind"] != "reject" and mid in bounced:
            detail("unexpected_bounce", mid, f"{m['kind']} <{m['rcpt']}> bounced")
        if want is not None and want in held:
            counts["delivered"] += 1
        elif mid in queued:
            counts["queued"] += 1
        elif mid in bounced:
            counts["bounced"] += 1
        else:
            detail("lost", mid, f"{m['kind']} <{m['rcpt']}> qid {m['qid']}: no copy at "
                   f"{want}, not queued, no DSN (copies={held})")

    for k, v in counts.items():
        print(f"{k} {v}")
    for lst in details.values():
        for line in lst:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
