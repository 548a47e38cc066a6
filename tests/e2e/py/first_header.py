#!/usr/bin/env python3
"""e2e helper: the name of the first header field after the delivery agent's Return-Path,
X-Original-To and Delivered-To.
Usage: first_header.py FILE
"""
import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.compat32)
print(next(k for k in m.keys() if k.lower() not in ("return-path", "x-original-to", "delivered-to")))
