#!/usr/bin/env python3
"""Steady SMTP load for tests/e2e/70-chaos.sh (Python standard library only).

SESSIONS parallel SMTP sessions send COUNT small messages, one recipient each, to a
mix of recipient kinds, from the trusted client address to pfa. Each message carries a
unique id (RUN-NNNNN) in its Subject, Message-ID, X-Chaos-Id header and recipient
address, so that the checker (account.py) can find every copy, queue entry and DSN.

A message refused with a 4xx (or a broken connection) is what an SMTP client keeps and
retries: it is tried again later (at most ATTEMPTS times, BACKOFF * attempt seconds
apart, so the tries span about half a minute), on a fresh session, since Postfix keeps a
failed milter disabled for the rest of a session. A session that was refused also waits
a little before its next transaction (doubling up to PAUSE_MAX), as a client facing a
tempfailing server slows down instead of hammering it. A 5xx is final. Nothing is
tried once DEADLINE seconds have passed.

Output: one tab-separated line per message in OUT,
    id  kind  recipient  accepted|refused|unsent  queue_id|-  attempts  last_reply
every refused attempt as "seconds-since-start  id  reply" in REFUSALS, and, every half
second, "attempted A finished F accepted N refused R" in PROGRESS.
Exit status 0 unless the driver itself failed.
"""

import argparse
import heapq
import os
import smtplib
import sys
import threading
import time
from email.utils import formatdate

SENDER = "sender@sender.lab.test"
HELO = "client.lab.test"
# one cycle of 20 messages: 11 compliant (DANE to pfb), 4 not compliant (fallback relay
# pfd), 2 own domain (local delivery at pfa), 2 refused by the receiver (pfb answers 550:
# a DSN to the sender), 1 bogus DNSSEC (451 at RCPT: never accepted over SMTP)
MIX = ["dane"] * 11 + ["fallback"] * 4 + ["own"] * 2 + ["reject"] * 2 + ["bogus"]
# each session ends after this many messages (QUIT), as real clients do
PER_SESSION = 50
# a refused message waits BACKOFF * attempt seconds before its next try: with the
# default 6 attempts its tries span 2+4+6+8+10 = 30 s, longer than an outage of the
# case plus the daemon's 15 s lifetime of a temporary verdict (TEMPORARY_VERDICT_TTL)
BACKOFF = 2.0
# after a refusal a session pauses PAUSE_MIN, doubling per refusal in a row up to
# PAUSE_MAX; a success resets it
PAUSE_MIN = 0.1
PAUSE_MAX = 1.0
# socket timeout for every SMTP command (smtplib applies it per operation)
SMTP_TIMEOUT = 30


def recipient(kind, mid):
    return {
        "dane": f"{mid}@nta.lab.test",
        "fallback": f"{mid}@notlsa.lab.test",
        "own": f"{mid}@sender.lab.test",
        "reject": f"reject-{mid}@nta.lab.test",
        "bogus": f"{mid}@bogus.lab.test",
    }[kind]


def message(mid, rcpt):
    return (
        f"Date: {formatdate(localtime=False)}\r\n"
        f"From: {SENDER}\r\n"
        f"To: {rcpt}\r\n"
        f"Subject: chaos {mid}\r\n"
        f"Message-ID: <{mid}@sender.lab.test>\r\n"
        f"X-Chaos-Id: {mid}\r\n"
        "\r\n"
        f"chaos load message {mid}\r\n"
    ).encode()


def reply_text(code, resp):
    if isinstance(resp, bytes):
        resp = resp.decode("utf-8", "replace")
    return f"{code} {' '.join(str(resp).split())}"[:200]


class Msg:
    def __init__(self, mid, kind):
        self.mid = mid
        self.kind = kind
        self.rcpt = recipient(kind, mid)
        self.status = "unsent"
        self.qid = "-"
        self.attempts = 0
        self.last = "-"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = 0
        self.finished = 0
        self.accepted = 0
        self.refused = 0
        self.t0 = time.monotonic()


class Worker(threading.Thread):
    def __init__(self, args, msgs, stats, deadline, refusals):
        super().__init__(daemon=True)
        self.refusals = refusals
        self.args = args
        self.fresh = list(reversed(msgs))
        self.retries = []  # heap of (due, seq, msg)
        self.seq = 0
        self.stats = stats
        self.deadline = deadline
        self.sess = None
        self.in_sess = 0
        self.pause = 0.0

    def close(self):
        if self.sess is not None:
            try:
                self.sess.quit()
            except Exception:
                try:
                    self.sess.close()
                except Exception:
                    pass
        self.sess = None
        self.in_sess = 0

    def session(self):
        if self.sess is None or self.in_sess >= PER_SESSION:
            self.close()
            s = smtplib.SMTP(timeout=SMTP_TIMEOUT, source_address=(self.args.source, 0))
            s.connect(self.args.server, self.args.port)
            s.ehlo(HELO)
            self.sess = s
        self.in_sess += 1
        return self.sess

    def attempt(self, m):
        """One SMTP transaction. Returns (outcome, reply): accepted, temp or perm."""
        try:
            s = self.session()
            code, resp = s.mail(SENDER)
            if code != 250:
                return ("perm" if code >= 500 else "temp"), reply_text(code, resp)
            code, resp = s.rcpt(m.rcpt)
            if code not in (250, 251):
                return ("perm" if code >= 500 else "temp"), reply_text(code, resp)
            code, resp = s.data(message(m.mid, m.rcpt))
            if code != 250:
                return ("perm" if code >= 500 else "temp"), reply_text(code, resp)
            text = resp.decode("utf-8", "replace")
            qid = text.rsplit("queued as ", 1)[-1].split()[0] if "queued as " in text else ""
            if not qid:
                return "temp", reply_text(code, resp) + " (no queue id)"
            m.qid = qid
            return "accepted", reply_text(code, resp)
        except smtplib.SMTPResponseException as e:
            return ("perm" if e.smtp_code >= 500 else "temp"), reply_text(e.smtp_code, e.smtp_error)
        except (smtplib.SMTPException, OSError) as e:
            return "temp", f"error {type(e).__name__}: {e}"[:200]

    def run(self):
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                break
            if self.retries and self.retries[0][0] <= now:
                m = heapq.heappop(self.retries)[2]
            elif self.fresh:
                m = self.fresh.pop()
            elif self.retries:
                time.sleep(min(0.5, max(0.0, self.retries[0][0] - now)))
                continue
            else:
                break
            m.attempts += 1
            with self.stats.lock:
                self.stats.attempted += 1
            outcome, m.last = self.attempt(m)
            if outcome == "accepted":
                m.status = "accepted"
                self.pause = 0.0
            else:
                self.refusals.append(f"{time.monotonic() - self.stats.t0:.1f}\t{m.mid}\t{m.last}")
                self.pause = min(PAUSE_MAX, max(PAUSE_MIN, self.pause * 2))
                time.sleep(max(0.0, min(self.pause, self.deadline - time.monotonic())))
                # a refusal may leave the session unusable (disabled milter, 421): start afresh
                self.close()
                m.status = "refused"
                if outcome == "temp" and m.attempts < self.args.attempts:
                    self.seq += 1
                    heapq.heappush(self.retries, (time.monotonic() + BACKOFF * m.attempts, self.seq, m))
                    continue
            with self.stats.lock:
                self.stats.finished += 1
                if m.status == "accepted":
                    self.stats.accepted += 1
                else:
                    self.stats.refused += 1
        self.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, default=25)
    p.add_argument("--source", required=True)
    p.add_argument("--run", required=True, help="id prefix, unique per run")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--attempts", type=int, default=6)
    p.add_argument("--deadline", type=float, required=True, help="seconds from start")
    p.add_argument("--out", required=True)
    p.add_argument("--progress", required=True)
    p.add_argument("--refusals", required=True)
    args = p.parse_args()
    if not (0 < args.count <= 100000 and 0 < args.sessions <= 100 and 0 < args.attempts <= 10):
        sys.exit("load.py: count, sessions or attempts out of range")

    # session w sends messages w, w + SESSIONS, ...; the kind's index also moves on by one
    # per round of len(MIX) messages, so that every session sends the whole mix even when
    # SESSIONS is a multiple of len(MIX) (else one session would send only bogus mail)
    msgs = [Msg(f"{args.run}-{i:05d}", MIX[(i + i // len(MIX)) % len(MIX)]) for i in range(args.count)]
    stats = Stats()
    deadline = time.monotonic() + args.deadline
    refusals = []  # list.append is atomic under the GIL
    workers = [Worker(args, msgs[w :: args.sessions], stats, deadline, refusals)
               for w in range(args.sessions)]
    for w in workers:
        w.start()

    def progress():
        with stats.lock:
            line = f"attempted {stats.attempted} finished {stats.finished} accepted {stats.accepted} refused {stats.refused}\n"
        with open(args.progress + ".new", "w") as f:
            f.write(line)
        os.replace(args.progress + ".new", args.progress)

    # bounded: the workers stop at the deadline; join each with what is left of it
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline + SMTP_TIMEOUT * 4:
        progress()
        time.sleep(0.5)
    progress()
    with open(args.out, "w") as f:
        for m in msgs:
            f.write("\t".join([m.mid, m.kind, m.rcpt, m.status, m.qid, str(m.attempts), m.last]) + "\n")
    with open(args.refusals, "w") as f:
        f.writelines(line + "\n" for line in list(refusals))
    stuck = sum(w.is_alive() for w in workers)
    if stuck:
        sys.exit(f"load.py: {stuck} sessions did not finish")


if __name__ == "__main__":
    main()
