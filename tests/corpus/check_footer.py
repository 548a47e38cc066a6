#!/usr/bin/python3
"""Independent check of `nta7516-milter filter --classification secure` on a corpus.

Uses only Python's standard `email` package, not the parser the filter uses, and
implements the footer rules from the README ("Footer", rule 14) on its own:

* the body text parts are: a single-part text/plain or text/html message; in
  multipart/alternative every text alternative (and the body of each nested multipart);
  in every other multipart the first part that yields a body part; never an attachment
  (Content-Disposition attachment, a filename or a name parameter), never inside a
  message/* part; a type without subtype is text/plain (RFC 2045 section 5.2);
* signed or encrypted bodies (multipart/signed, multipart/encrypted,
  application/(x-)pkcs7-mime, application/pgp-encrypted, inline PGP armor) get nothing.

For every message it asserts:
* a refusal (exit 75) left stdout empty; any other exit status is 0;
* the output parses, with no defect the input did not already have;
* the header is the input's without X-NTA7516-* fields, plus
  "X-NTA7516-Classification: secure" at the end;
* every body text part decodes and carries the footer, after the original text;
  quoted-printable and base64 lines are at most 76 characters, all lines at most 998
  octets (unless the input already had longer ones);
* every other part (headers, payload, preamble, epilogue) is byte-identical;
* skipped footers and refusals match the expectations file exactly (so a new skip, or
  an expected one that no longer happens, fails).

Usage: check_footer.py EXPECTED_TSV WORK_DIR
WORK_DIR has manifest.tsv (index, corpus path, exit status) and INDEX.in, INDEX.out,
INDEX.err for every message. The footer texts are read from WORK_DIR/footer.txt and
WORK_DIR/footer.html.
"""

import email
import email.policy
import re
import sys

# Python's two parsing policies differ on illegal but common syntax: compat32 keeps the
# line break of a folded quoted boundary, default does not take an unquoted boundary with
# "=" in it. A message passes when it passes under one of them.
POLICIES = (email.policy.default, email.policy.compat32)
OWN_PREFIX = "x-nta7516-"
PROTECTED_TYPES = {
    "multipart/signed",
    "multipart/encrypted",
    "application/pkcs7-mime",
    "application/x-pkcs7-mime",
    "application/pgp-encrypted",
}
PGP_MARKERS = (b"-----BEGIN PGP SIGNED MESSAGE-----", b"-----BEGIN PGP MESSAGE-----")


class Fail(Exception):
    pass


class Protected(Exception):
    pass


def content_type(part, in_digest):
    """The effective type: RFC 2045 section 5.2 / RFC 2046 section 5.1.5 defaults."""
    raw = part.get("content-type")
    if raw is None:
        return "message/rfc822" if in_digest else "text/plain"
    ctype = part.get_content_type()
    maintype, _, subtype = ctype.partition("/")
    if not subtype and maintype != "multipart":
        return "text/plain"
    return ctype


def is_attachment(part):
    disposition = part.get("content-disposition")
    if disposition is not None:
        if str(disposition).split(";")[0].strip().lower() == "attachment":
            return True
        if part.get_param("filename", header="content-disposition") is not None:
            return True
    return part.get_param("name", header="content-type") is not None


def body_parts(msg):
    """[(part, 'plain'|'html')] the footer belongs in; raises Protected."""
    found = []

    def visit(part, in_digest, is_root):
        ctype = content_type(part, in_digest)
        if ctype in PROTECTED_TYPES:
            if is_root or not is_attachment(part):
                raise Protected(ctype)
            return
        if ctype.startswith("multipart/"):
            if not part.is_multipart():
                return
            subtype = ctype.split("/", 1)[1]
            for child in part.get_payload():
                before = len(found)
                visit(child, subtype == "digest", False)
                if subtype != "alternative" and len(found) > before:
                    break
            return
        if ctype in ("text/plain", "text/html") and not is_attachment(part):
            payload = part.get_payload(decode=True) or b""
            if any(m in payload for m in PGP_MARKERS):
                raise Protected("inline PGP")
            found.append((part, "html" if ctype == "text/html" else "plain"))

    visit(msg, False, True)
    return found


def split_header(raw):
    m = re.search(rb"\r?\n\r?\n", raw)
    if m is None:
        return raw, b""
    return raw[: m.start()], raw[m.end():]


def header_fields(head):
    """Header fields as raw byte strings (continuation lines kept)."""
    fields = []
    for line in re.split(rb"(?<=\n)", head + b"\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return [f.rstrip(b"\r\n") for f in fields if f.strip()]


def field_name(field):
    return field.split(b":", 1)[0].strip().lower().decode("ascii", "replace")


def check_header(raw_in, raw_out):
    fin = [f for f in header_fields(split_header(raw_in)[0])
           if not field_name(f).startswith(OWN_PREFIX)]
    fout = header_fields(split_header(raw_out)[0])
    want = fin + [b"X-NTA7516-Classification: secure"]
    if fout != want:
        raise Fail("header changed: %r != %r" % (fout[-3:], want[-3:]))


def text_of(part):
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("latin-1")


def norm(text):
    """Line breaks and trailing white space do not count (transports change them)."""
    return "\n".join(l.rstrip() for l in text.replace("\r\n", "\n").split("\n")).strip("\n")


def check_text_part(pin, pout, kind, footer):
    tin, tout = text_of(pin), text_of(pout)
    want = norm(footer[kind])
    got = norm(tout)
    if want not in got:
        raise Fail("%s part lacks the footer: ...%r" % (kind, got[-200:]))
    # Removing the footer gives the original text: exactly for plain text (the footer is
    # appended), up to white space for HTML (it goes before </body>, on its own line).
    i = got.rfind(want)
    if kind == "plain":
        if norm(got[:i]) != norm(tin):
            raise Fail("plain text changed: %r -> %r" % (norm(tin)[-200:], norm(got[:i])[-200:]))
    else:
        squash = lambda t: re.sub(r"\s+", "", t)
        if squash(got[:i] + got[i + len(want):]) != squash(tin):
            raise Fail("html text changed: %r" % squash(tin)[-200:])
    cte = str(pout.get("content-transfer-encoding", "")).strip().lower()
    if cte in ("quoted-printable", "base64"):
        for line in pout.get_payload().splitlines():
            if len(line) > 76:
                raise Fail("%s line of %d characters" % (cte, len(line)))


def own_removed(items):
    return [(k, v) for k, v in items if not k.lower().startswith(OWN_PREFIX)]


def same_part(pin, pout, where):
    # The top-level header was compared byte for byte by check_header.
    if where == "1" and own_removed(pin.items()) == own_removed(pout.items()):
        pass
    elif pin.items() != pout.items():
        raise Fail("%s: part header changed" % where)
    if pin.preamble != pout.preamble or pin.epilogue != pout.epilogue:
        raise Fail("%s: preamble or epilogue changed" % where)
    if pin.is_multipart() != pout.is_multipart():
        raise Fail("%s: structure changed" % where)
    if not pin.is_multipart():
        if pin.get_payload() != pout.get_payload():
            raise Fail("%s: payload changed" % where)


def walk_pair(pin, pout, targets, footer, where, counts):
    """Compares the two trees; footer targets are checked as text, the rest as bytes."""
    if id(pin) in targets:
        if own_removed(pin.items()) != own_removed(pout.items()):
            raise Fail("%s: header of a text part changed" % where)
        if norm(footer[targets[id(pin)]]) in norm(text_of(pout)):
            check_text_part(pin, pout, targets[id(pin)], footer)
            counts["added"] += 1
        else:
            same_part(pin, pout, where)
            counts["left"] += 1
        return
    same_part(pin, pout, where)
    if pin.is_multipart():
        cin, cout = pin.get_payload(), pout.get_payload()
        if len(cin) != len(cout):
            raise Fail("%s: number of parts changed" % where)
        for i, (a, b) in enumerate(zip(cin, cout)):
            walk_pair(a, b, targets, footer, "%s.%d" % (where, i + 1), counts)


def defects(msg):
    return sorted(type(d).__name__ for part in msg.walk() for d in part.defects)


def check_one(raw_in, raw_out, rc, err, footer):
    """Returns (status, reason) for the expectations file."""
    errors = []
    for policy in POLICIES:
        try:
            return check_with(raw_in, raw_out, rc, err, footer, policy)
        except Fail as e:
            errors.append(str(e))
    raise Fail(" / ".join(errors))


def check_with(raw_in, raw_out, rc, err, footer, policy):
    if rc == 75:
        if raw_out:
            raise Fail("exit 75 but %d bytes on stdout" % len(raw_out))
        last = err.strip().splitlines()[-1] if err.strip() else ""
        return "refused", last.replace("nta7516-milter filter: ", "", 1)
    if rc != 0:
        raise Fail("exit status %d" % rc)
    check_header(raw_in, raw_out)
    # The header was compared byte for byte; the trees are compared with the output's
    # header on both, so that a header the two parsers end differently (an obsolete
    # "Name :" field, say) cannot blur what happened to the body.
    head_out = raw_out[: len(raw_out) - len(split_header(raw_out)[1])]
    min_ = email.message_from_bytes(head_out + split_header(raw_in)[1], policy=policy)
    mout = email.message_from_bytes(raw_out, policy=policy)
    new_defects = set(defects(mout)) - set(defects(min_))
    if new_defects:
        raise Fail("new defects: %s" % sorted(new_defects))
    longest_in = max((len(l.rstrip(b"\r")) for l in raw_in.split(b"\n")), default=0)
    longest_out = max((len(l.rstrip(b"\r")) for l in raw_out.split(b"\n")), default=0)
    if longest_out > max(998, longest_in):
        raise Fail("line of %d octets" % longest_out)

    notes = err
    m = re.search(r"footer added to (\d+) part\(s\)(?:; (\d+) part\(s\) left without it: (.*))?", notes)
    skipped = re.search(r"footer skipped: (.*)", notes)
    try:
        targets = {id(p): kind for p, kind in body_parts(min_)}
        protected = None
    except Protected as e:
        targets, protected = {}, str(e)
    counts = {"added": 0, "left": 0}
    walk_pair(min_, mout, targets, footer, "1", counts)

    if protected is not None:
        if not skipped:
            raise Fail("protected (%s) but the filter said: %r" % (protected, notes))
        if re.match(r"(signed|encrypted) message", skipped.group(1)):
            return "protected", ""
        return "skipped", skipped.group(1).strip()
    if m:
        added, left = int(m.group(1)), int(m.group(2) or 0)
        if counts["added"] != added or counts["left"] != left:
            raise Fail("filter says %d added, %d left; found %d with footer, %d without (of %d body text parts)"
                       % (added, left, counts["added"], counts["left"], len(targets)))
        if added + left != len(targets):
            raise Fail("filter handled %d parts, there are %d body text parts" % (added + left, len(targets)))
        return ("partial", m.group(3).strip()) if left else ("added", "")
    if skipped:
        reason = skipped.group(1).strip()
        if counts["added"]:
            raise Fail("footer skipped but found in %d parts" % counts["added"])
        if reason.startswith("no text/plain") and targets:
            raise Fail("filter found no body text part, there are %d" % len(targets))
        if reason.startswith(("signed", "encrypted")):
            raise Fail("filter says %r, the checker sees no protection" % reason)
        return "skipped", reason
    raise Fail("no footer note in stderr: %r" % notes)


def main():
    expected_path, work = sys.argv[1], sys.argv[2]
    footer = {
        "plain": open(work + "/footer.txt", encoding="utf-8").read(),
        "html": open(work + "/footer.html", encoding="utf-8").read(),
    }
    expected = {}
    for line in open(expected_path, encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            path, status, reason = (line.rstrip("\n").split("\t") + ["", ""])[:3]
            expected[path] = (status, reason)

    failures, seen, tally = [], set(), {}
    for line in open(work + "/manifest.tsv", encoding="utf-8"):
        index, path, rc = line.rstrip("\n").split("\t")
        seen.add(path)
        base = "%s/%s" % (work, index)
        raw_in = open(base + ".in", "rb").read()
        raw_out = open(base + ".out", "rb").read()
        err = open(base + ".err", "rb").read().decode("utf-8", "replace")
        try:
            status, reason = check_one(raw_in, raw_out, int(rc), err, footer)
        except Fail as e:
            failures.append("%s: %s" % (path, e))
            continue
        except Exception as e:  # the checker itself must not hide a message
            failures.append("%s: checker error %s: %s" % (path, type(e).__name__, e))
            continue
        tally[status] = tally.get(status, 0) + 1
        # Listed: refusals, and skips the checker cannot confirm on its own (it confirms
        # protection and the absence of a body text part itself).
        default = status if status in ("added", "protected") else None
        if status == "skipped" and reason.startswith("no text/plain"):
            default = "skipped"
        want = expected.get(path, (default, reason if default == "skipped" else ""))
        if want is None or want[0] != status or not reason.startswith(want[1]):
            failures.append("%s: %s %r, expected %s" % (path, status, reason, want))
    for path in sorted(set(expected) - seen):
        failures.append("%s: in the expectations file but not in the corpus" % path)

    print("corpus: %d messages: %s" % (len(seen), ", ".join(
        "%d %s" % (n, s) for s, n in sorted(tally.items()))))
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
