#!/usr/bin/env python3
"""e2e helper: one socketmap request "route *" over a unix socket; prints the reply, or
"connect: <why>" when the socket cannot be reached.
Usage: socketmap_query.py SOCKET
"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect: " + e.strerror)
    sys.exit(0)
q = b"route *"
s.sendall(str(len(q)).encode() + b":" + q + b",")
print(s.recv(1000).decode())
