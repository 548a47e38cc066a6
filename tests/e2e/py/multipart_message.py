#!/usr/bin/env python3
"""e2e helper: a CRLF multipart/alternative message (text/plain quoted-printable, text/html base64).
Usage: multipart_message.py OUT TOKEN RCPT
"""
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
path, tok, rcpt = sys.argv[1:4]
m = EmailMessage()
m["From"] = "sender@sender.lab.test"
m["To"] = rcpt
m["Subject"] = "e2e " + tok
m["Date"] = formatdate()
m["Message-ID"] = make_msgid(domain="sender.lab.test")
m.set_content("Geachte collega,\n\nUitslag van patiënt " + tok + ".\n", charset="utf-8", cte="quoted-printable")
m.add_alternative("<html><body><p>Uitslag van pati&euml;nt " + tok + ".</p></body></html>\n",
                  subtype="html", charset="utf-8", cte="base64")
with open(path, "wb") as f:
    f.write(m.as_bytes().replace(b"\n", b"\r\n"))
