#!/usr/bin/python3
"""Lab-only helpers of tests/e2e/33-portal-browser.sh (Python standard library only).

    portal_fakes.py sms ADDR:PORT LOG
        A fake SMS gateway speaking the portal's `webhook` provider API: every POST is
        answered 200 {"id": "fake-N"} and appended to LOG as one JSON line
        {"n": N, "path": ..., "authorization": ..., "body": <the request's JSON>}.
    portal_fakes.py tee LISTEN UPSTREAM DIR
        A TCP relay between Postfix's LMTP client and the portal (LISTEN -> UPSTREAM) that
        records every connection's bytes: DIR/conn-N.c2s (client to server) and
        DIR/conn-N.s2c (server to client). When UPSTREAM refuses, the client's connection
        is closed at once (Postfix then defers, as when the portal is down).
    portal_fakes.py data DIR TOKEN OUT
        From the c2s captures in DIR: the one DATA payload that contains TOKEN, as the
        message Postfix handed over (RFC 5321 section 4.5.2 dot-stuffing undone, the final
        CRLF "." CRLF removed, every other byte as on the wire), written to OUT. Exit 1
        unless exactly one payload matches.
    portal_fakes.py wrong-codes LINK SMS_LOG N
        A client that never gets it right: GETs the portal's LINK, asks for a code (POST
        .../send with the page's CSRF token and the portal's Origin), waits (at most 20 s)
        until the fake gateway's LOG holds N requests, then enters a code that differs
        from the one sent (POST .../code) five times. Prints one line per POST, "send
        STATUS" / "code STATUS", and last "locked" or "not locked" (the lock page's text).
"""

import json
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Bounds: one request body, one idle relay connection.
MAX_BODY = 64 * 1024
RELAY_IDLE_SECONDS = 120


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def sms(listen, log):
    lock = threading.Lock()
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                self.send_error(413)
                return
            raw = self.rfile.read(n)
            try:
                body = json.loads(raw)
            except ValueError:
                self.send_error(400)
                return
            with lock:
                count[0] += 1
                entry = {
                    "n": count[0],
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "body": body,
                }
                with open(log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                answer = json.dumps({"id": "fake-%d" % count[0]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, fmt, *args):
            sys.stderr.write("sms-fake: " + (fmt % args) + "\n")

    ThreadingHTTPServer(addr(listen), Handler).serve_forever()


def pump(src, dst, record):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            record.write(b)
            record.flush()
            dst.sendall(b)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def relay(client, upstream, base):
    client.settimeout(RELAY_IDLE_SECONDS)
    try:
        server = socket.create_connection(upstream, timeout=10)
    except OSError as e:
        sys.stderr.write("lmtp-tee: upstream %s:%d: %s\n" % (upstream + (e,)))
        client.close()
        return
    server.settimeout(RELAY_IDLE_SECONDS)
    with open(base + ".c2s", "wb") as c2s, open(base + ".s2c", "wb") as s2c:
        t = threading.Thread(target=pump, args=(server, client, s2c), daemon=True)
        t.start()
        pump(client, server, c2s)
        t.join(RELAY_IDLE_SECONDS)
    client.close()
    server.close()


def tee(listen, upstream, directory):
    os.makedirs(directory, exist_ok=True)
    ls = socket.create_server(addr(listen), reuse_port=False)
    n = 0
    while True:
        client, _ = ls.accept()
        n += 1
        base = os.path.join(directory, "conn-%d" % n)
        threading.Thread(
            target=relay, args=(client, addr(upstream), base), daemon=True
        ).start()


def payloads(stream):
    """The DATA payloads of one client-to-server LMTP/SMTP stream."""
    lines = stream.splitlines(keepends=True)
    out = []
    i = 0
    while i < len(lines):
        if lines[i].rstrip(b"\r\n").upper() == b"DATA":
            i += 1
            msg = []
            while i < len(lines) and lines[i] != b".\r\n":
                line = lines[i]
                msg.append(line[1:] if line.startswith(b".") else line)
                i += 1
            if i < len(lines):
                out.append(b"".join(msg))
        i += 1
    return out


def data(directory, token, out):
    found = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".c2s"):
            with open(os.path.join(directory, name), "rb") as f:
                found += [p for p in payloads(f.read()) if token.encode() in p]
    if len(found) != 1:
        sys.stderr.write("data: %d DATA payloads with %s in %s\n" % (len(found), token, directory))
        return 1
    with open(out, "wb") as f:
        f.write(found[0])
    return 0


def http(url, form=None):
    """(status, page) of one GET, or of one form POST from the portal's own origin."""
    data = None
    headers = {}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        parts = urllib.parse.urlsplit(url)
        headers["Origin"] = "%s://%s" % (parts.scheme, parts.netloc)
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def csrf(page):
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    if not m:
        raise SystemExit("no CSRF token on the page")
    return m.group(1)


def wrong_codes(link, log, n):
    status, page = http(link)
    status, page = http(link + "/send", {"csrf": csrf(page)})
    print("send", status)
    deadline = time.monotonic() + 20
    while True:
        try:
            with open(log, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= n:
            break
        if time.monotonic() > deadline:
            raise SystemExit("SMS %d did not reach the fake gateway" % n)
        time.sleep(0.1)
    sent = re.findall(r"\b\d{6}\b", json.loads(lines[n - 1])["body"]["text"])[0]
    wrong = "%06d" % ((int(sent) + 1) % 1000000)
    for _ in range(5):
        status, page = http(link + "/code", {"csrf": csrf(page), "code": wrong})
        print("code", status)
        if "csrf" not in page:
            break
    print("locked" if "Te veel onjuiste codes" in page else "not locked")
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "sms":
        sms(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "tee":
        tee(argv[2], argv[3], argv[4])
    elif len(argv) == 5 and argv[1] == "data":
        return data(argv[2], argv[3], argv[4])
    elif len(argv) == 5 and argv[1] == "wrong-codes":
        return wrong_codes(argv[2], argv[3], int(argv[4]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
