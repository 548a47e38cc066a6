#!/usr/bin/env python3
"""e2e helper: every http(s) URL in the decoded text/plain part of a delivered message.
Usage: mail_urls.py FILE
"""
import re, sys, email, email.policy
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
part = m.get_body(preferencelist=("plain",))
for u in re.findall(r"\bhttps?://\S+", part.get_content()):
    print(u)
