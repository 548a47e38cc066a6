#!/usr/bin/env python3
"""e2e helper: the values of one header field in a message, one per line, unfolded.
Usage: header_values.py FILE NAME
"""
import email, email.policy, sys
with open(sys.argv[1], 'rb') as f:
    m = email.message_from_binary_file(f, policy=email.policy.compat32)
for v in m.get_all(sys.argv[2]) or []:
    print(' '.join(str(v).split()))
