#!/usr/bin/env python3
"""Small measuring clients for bench/postfix-throughput.sh (standard library only).

latency HOST PORT COUNT SIZE FROM RCPT_TEMPLATE
    One persistent SMTP connection (EHLO once); COUNT messages, one after the other, each
    with a unique recipient (RCPT_TEMPLATE with {n}); times MAIL FROM .. the 250 after
    end-of-data per message. Prints "p50 p95 p99 mean max" in milliseconds.

socketmap unix:PATH|inet:HOST:PORT COUNT NAME KEY_TEMPLATE
    One persistent socketmap connection (netstrings, as Postfix uses it); COUNT lookups
    "NAME key" one after the other (KEY_TEMPLATE with {n}). Prints
    "lookups_per_s p50_us p99_us first_reply".
"""
import os
import smtplib
import socket
import sys
import time


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def make_body(size):
    # printable lines of 78 characters + CRLF, like an ordinary text message
    line = ("The quick brown fox jumps over the lazy dog 0123456789 " * 2)[:78]
    out, n = [], 0
    while n < size:
        out.append(line)
        n += len(line) + 2
    return "\r\n".join(out) + "\r\n"


def latency(host, port, count, size, sender, rcpt_tmpl):
    body = make_body(size)
    s = smtplib.SMTP(host, port, timeout=60)
    s.ehlo("latency.bench.lab.test")
    times = []
    tag = os.getpid()
    for n in range(count):
        rcpt = rcpt_tmpl.format(n="%d%06d" % (tag, n))
        msg = (
            "From: <%s>\r\nTo: <%s>\r\nSubject: latency %d\r\nMessage-ID: <lat%d.%d@bench.lab.test>\r\n"
            "Date: %s\r\n\r\n%s" % (sender, rcpt, n, tag, n, time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), body)
        )
        t0 = time.perf_counter()
        refused = s.sendmail(sender, [rcpt], msg)
        t1 = time.perf_counter()
        if refused:
            raise SystemExit("refused: %r" % (refused,))
        times.append((t1 - t0) * 1000.0)
    s.quit()
    times.sort()
    print("%.2f %.2f %.2f %.2f %.2f" % (pct(times, 50), pct(times, 95), pct(times, 99), sum(times) / len(times), times[-1]))


def netstring(b):
    return b"%d:%s," % (len(b), b)


def read_netstring(sock, buf):
    while True:
        colon = buf.find(b":")
        if colon > 0:
            n = int(buf[:colon])
            end = colon + 1 + n
            if len(buf) >= end + 1:
                if buf[end:end + 1] != b",":
                    raise SystemExit("bad netstring")
                return buf[colon + 1:end], buf[end + 1:]
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("socketmap server closed the connection")
        buf += chunk


def socketmap(addr, count, name, key_tmpl):
    if addr.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(addr[5:])
    elif addr.startswith("inet:"):
        host, port = addr[5:].rsplit(":", 1)
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        raise SystemExit("address must be unix:PATH or inet:HOST:PORT")
    sock.settimeout(30)
    buf = b""
    times = []
    first = None
    tag = os.getpid()
    start = time.perf_counter()
    for n in range(count):
        key = key_tmpl.format(n="%d%06d" % (tag, n))
        q = netstring(("%s %s" % (name, key)).encode())
        t0 = time.perf_counter()
        sock.sendall(q)
        reply, buf = read_netstring(sock, buf)
        times.append((time.perf_counter() - t0) * 1e6)
        if first is None:
            first = reply.decode(errors="replace")
    total = time.perf_counter() - start
    sock.close()
    times.sort()
    print("%.0f %.0f %.0f %s" % (count / total, pct(times, 50), pct(times, 99), first.replace(" ", "_")))


def main(argv):
    if len(argv) >= 2 and argv[1] == "latency" and len(argv) == 8:
        latency(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6], argv[7])
    elif len(argv) >= 2 and argv[1] == "socketmap" and len(argv) == 6:
        socketmap(argv[2], int(argv[3]), argv[4], argv[5])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
