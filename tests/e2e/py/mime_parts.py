#!/usr/bin/env python3
"""e2e helper: the top content type, then each leaf part: "part TYPE CTE" and "body TYPE <decoded text,
whitespace folded>".
Usage: mime_parts.py FILE
"""
import sys, email, email.policy
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
print("top", m.get_content_type())
for p in m.walk():
    if p.is_multipart():
        continue
    text = p.get_content()
    print("part", p.get_content_type(), p["Content-Transfer-Encoding"])
    print("body", p.get_content_type(), " ".join(text.split()))
