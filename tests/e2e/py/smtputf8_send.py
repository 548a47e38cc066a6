#!/usr/bin/env python3
"""e2e helper: one message over SMTP from the trusted client, SMTPUTF8 when the recipient is not ASCII.
Usage: smtputf8_send.py HOST RCPT TOKEN; prints "250 <queue id>" or the refusal.
"""
import smtplib, sys
host, rcpt, token = sys.argv[1:4]
msg = (f"From: sender@sender.lab.test\r\nTo: <{rcpt}>\r\nSubject: e2e {token}\r\n"
       f"Message-ID: <{token}@sender.lab.test>\r\n\r\ne2e message {token}\r\n").encode()
opts = [] if rcpt.isascii() else ["SMTPUTF8"]
s = smtplib.SMTP(host, 25, source_address=(host, 0), timeout=25)
s.ehlo("client.lab.test")
try:
    s.mail("sender@sender.lab.test", opts)
    code, text = s.rcpt(rcpt)
    if code != 250:
        print(code, text.decode(errors="replace"))
        sys.exit(0)
    code, text = s.data(msg)
    text = text.decode(errors="replace")
    print(code, text.rsplit(" ", 1)[-1] if code == 250 else text)
finally:
    s.quit()
