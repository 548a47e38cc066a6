#!/usr/bin/env python3
"""e2e helper: a CRLF inbound message, DKIM-signed with dkimpy unless SIGN is none.
Usage: inbound_message.py OUT TOKEN FROM SIGN [SUBJECT|-] [HEADER...] KEY SELECTOR BODY_MARKER SUBJECT_MARKER
SIGN: none | relaxed | simple (every header field signed, canonicalisation SIGN/SIGN);
SUBJECT "" = the default subject, "-" = no Subject.
"""
import sys
import dkim
from email.utils import formatdate, make_msgid
out, token, frm, sign, subject, *rest = sys.argv[1:]
extra, (key, selector, body_marker, subject_marker) = rest[:-4], rest[-4:]
if subject == "":
    subject = f"e2e {token} {subject_marker}"
fields = [
    ("From", f" Afzender Extern <{frm}>"),
    ("To", f" <{token}@sender.lab.test>"),
    ("Date", " " + formatdate()),
    ("Message-ID", " " + make_msgid(domain=frm.split("@")[1])),
    ("MIME-Version", " 1.0"),
    ("Content-Type", " text/plain; charset=us-ascii"),
]
if subject != "-":
    fields.insert(2, ("Subject", " " + subject))
for h in extra:
    name, value = h.split(":", 1)
    fields.append((name, value))
head = b"".join(f"{n}:{v}\r\n".encode() for n, v in fields)
body = f"Inbound e2e message.\r\n{body_marker} {token}\r\n".encode()
msg = head + b"\r\n" + body
if sign != "none":
    c = sign.encode()
    sig = dkim.sign(msg, selector.encode(), b"ext.lab.test", open(key, "rb").read(),
                    canonicalize=(c, c),
                    include_headers=[n.lower().encode() for n, _ in fields])
    msg = sig + msg
with open(out, "wb") as f:
    f.write(msg)
