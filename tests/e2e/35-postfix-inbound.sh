#!/usr/bin/env bash
# 35-postfix-inbound: verification of mail from outside through real Postfix.
#
# Same lab as 20/30 (lib-postfix.sh). Inbound mail goes to pfa, the organisation's own
# MTA, for the own domain sender.lab.test (virtual(8) delivery into pfa's maildir): over
# STARTTLS to pfa's inbound listener 127.0.10.1:2525 (lab cert), or without TLS to the same
# listener or to :25. External clients: 127.0.10.98 (allowed by the SPF records of
# ext/plainext/quarext.lab.test) and 127.0.10.97 (allowed by none). Neither is in
# [outbound] networks, so the milter verifies SPF, DKIM and DMARC over the daemon's own
# validating resolver. Messages are built and DKIM-signed here with python3-dkim
# (dkim.sign) with ext.lab.test's key, whose record this file publishes in lab.test.
# Evidence: the delivered copies (headers through python3's email module), dkimverify on
# them, swaks transcripts, pfa's log, postqueue -j and the audit log's lines for the queue
# id.
#
# Cases: (a) signed, aligned, over TLS, from an NTA 7516 party -> AR dkim/spf/dmarc=pass,
# "secure (...)", the signature still verifies after delivery; simple/simple signature
# over odd header spacing and folding (byte-exact header values, LEADING_SPACE);
# (b) the same without TLS -> "insecure (not received over TLS; ...)"; DMARC pass from a
# domain without NTA record -> insecure (not an NTA 7516 party); (c) unsigned from an
# address SPF does not allow -> spf=fail, dkim=none, dmarc=fail, insecure, still
# delivered under dmarc = "none"; (d) forged X-NTA7516-*, bypass and our-id
# Authentication-Results from outside are removed, foreign and look-alike ones kept;
# (e) dmarc = "honour": p=reject failure -> 550 5.7.1 at end of data, nothing delivered;
# p=quarantine failure -> on hold; passing mail still delivered; (f) subject tags for
# secure, insecure and Subject-less mail; outbound mail gets no inbound headers.
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

AUTHSERV=mx.sender.lab.test
INBOUND_BASE="authserv_id = \"$AUTHSERV\""
PF_INBOUND=$INBOUND_BASE
EXT_KEY="$LAB/dkim/ext.pem"
EXT_SELECTOR=e2e
# python3-dkim is Debian's; `python3` on PATH may be another interpreter
SYS_PY=/usr/bin/python3
# markers that must reach the mailbox but never the audit log (90-audit-verify)
BODY_MARKER=NTA7516-E2E-BODY-MARKER
SUBJECT_MARKER=NTA7516-E2E-SUBJECT-MARKER

pf_lab_up fallback
pf_dkim_publish "$EXT_SELECTOR._domainkey.ext.lab.test" "$EXT_KEY"
mkdir -p "$LAB/audit"
printf '%s\n%s\n' "$BODY_MARKER" "$SUBJECT_MARKER" >>"$LAB/audit/markers"

# ---------------------------------------------------------------------------------------
# Helpers

# in_msg OUT TOKEN FROM SIGN [SUBJECT|-] [HEADER...] : write a CRLF message from FROM to
# $TOKEN@sender.lab.test; SIGN: none | relaxed | simple (DKIM with ext.lab.test's key,
# every header field signed, canonicalisation SIGN/SIGN); SUBJECT "-" = no Subject
in_msg() {
    "$SYS_PY" "$E2E_DIR/py/inbound_message.py" "$@" "$EXT_KEY" "$EXT_SELECTOR" "$BODY_MARKER" "$SUBJECT_MARKER"
}

# in_send ext|spoof TOKEN MAIL_FROM DATA_FILE tls|plain [PORT] : swaks to pfa
# (127.0.10.1:PORT, default the STARTTLS listener) with DATA_FILE as it is; output in
# $LAB/out/swaks-TOKEN.out (IN_OUT), queue id in IN_QID; returns swaks' exit status
in_send() {
    local who=$1 token=$2 from=$3 data=$4 mode=$5 port=${6:-$PF_TLS_PORT} ip rc=0 tls=()
    case "$who" in
    ext) ip=$PF_EXT ;;
    spoof) ip=$PF_SPOOF ;;
    *) e2e_die "in_send: ext or spoof, not $who" ;;
    esac
    [ "$mode" = tls ] && tls=(-tls)
    IN_OUT="$LAB/out/swaks-$token.out"
    run_in_lab_resolv timeout 60 swaks --server "$PF_INT:$port" --local-interface "$ip" \
        --helo "mta.${from#*@}" --from "$from" --to "$token@sender.lab.test" \
        --data "$data" "${tls[@]}" --timeout 30 >"$IN_OUT" 2>&1 || rc=$?
    IN_QID=$(sed -n 's/^<[~-]* *250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$IN_OUT" | tail -n 1)
    return "$rc"
}

# in_accepted DESC ARGS... : in_send, asserting that pfa queued it (IN_QID, IN_OUT set)
in_accepted() {
    local desc=$1 rc=0
    shift
    in_send "$@" || rc=$?
    if [ "$rc" -eq 0 ] && [ -n "$IN_QID" ]; then
        e2e_pass "$desc"
    else
        e2e_fail "$desc: swaks exited $rc, queue id '$IN_QID'" "$(grep -E '^(<|\*\*\*|===)' "$IN_OUT" | tail -n 10)"
        return 1
    fi
}

# hdr_count FILE NAME : how many NAME header fields the delivered copy has
hdr_count() { pf_hdr "$1" "$2" | grep -c . || true; }

# ours FILE : the Authentication-Results values that claim our authserv-id
ours() { pf_hdr "$1" Authentication-Results | grep -i "^$AUTHSERV;" || true; }

# top_header FILE : name of the first header field after the delivery agent's
# Return-Path, X-Original-To and Delivered-To
top_header() {
    python3 "$E2E_DIR/py/first_header.py" "$1"
}

# audit_detail QID EVENT_TYPE : the `detail` objects of the audit lines of that type for
# that queue id (one JSON object per line)
audit_detail() {
    jq -c --arg q "$1" --arg t "$2" 'select(.event_type == $t and .detail.queue_id == $q) | .detail' \
        "$PF_AUDIT_FILE" 2>/dev/null || true
}

# delivered_local DESC QID RCPT : pfa delivered QID to RCPT by virtual(8)
delivered_local() {
    pf_assert_log "$1" pfa "postfix/virtual\[[0-9]+\]: $2: to=<$3>, relay=virtual, .*status=sent"
}

# --- (a) signed, aligned, over STARTTLS, from an NTA 7516 party: secure ----------------
t=$(pf_token)
r="$t@sender.lab.test"
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@ext.lab.test relaxed ""
in_accepted "secure: DKIM-signed message from ext.lab.test over STARTTLS accepted" ext "$t" someone@ext.lab.test "$msg" tls
q=$IN_QID
assert_match "secure: swaks really used STARTTLS (TLS 1.2 or later)" '^=== TLS started with cipher TLSv1\.[23]' "$(cat "$IN_OUT")"
pf_assert_log "secure: pfa's inbound listener logged the TLS session" pfa \
    'postfix/smtpd\[[0-9]+\]: Anonymous TLS connection established from [^ ]*\[127\.0\.10\.98\]: TLSv1\.[23] '
delivered_local "secure: pfa delivered it locally (virtual)" "$q" "$r"
if pf_assert_mail "secure: the recipient's mailbox received it" pfa "$t" "$r"; then
    f=$PF_FILE
    ar=$(ours "$f")
    assert_eq "secure: exactly one Authentication-Results with our authserv-id" 1 "$(printf '%s' "$ar" | grep -c .)"
    # mail-auth names the signer by header.i (the i= tag, here its default @ext.lab.test)
    assert_match "secure: AR dkim=pass for @ext.lab.test s=$EXT_SELECTOR" "dkim=pass header\.i=@ext\.lab\.test header\.s=$EXT_SELECTOR " "$ar"
    assert_match "secure: AR spf=pass for smtp.mailfrom someone@ext.lab.test" 'spf=pass [^;]*smtp\.mailfrom=someone@ext\.lab\.test' "$ar"
    assert_match "secure: AR dmarc=pass header.from=ext.lab.test" 'dmarc=pass [^;]*header\.from=ext\.lab\.test' "$ar"
    assert_eq "secure: our Authentication-Results is the top header field" Authentication-Results "$(top_header "$f")"
    assert_match "secure: X-NTA7516-Inbound: secure (TLS version and cipher; dmarc=pass; NTA 7516 party)" \
        '^secure \(TLSv1\.[23] [A-Z0-9_-]+; sender authenticated \(dmarc=pass for [^)]*ext\.lab\.test\); ext\.lab\.test is an NTA 7516 party\)$' \
        "$(pf_hdr "$f" X-NTA7516-Inbound)"
    assert_eq "secure: exactly one X-NTA7516-Inbound" 1 "$(hdr_count "$f" X-NTA7516-Inbound)"
    assert_match "secure: Received says it came over TLS from 127.0.10.98" '\[127\.0\.10\.98\].*\(using TLSv1\.[23] with cipher' "$(pf_hdr "$f" Received)"
    assert_eq "secure: the sender's DKIM signature still verifies after delivery (dkimverify)" "signature ok" "$(pf_dkimverify "$f")"
    assert_eq "secure: Subject unchanged (no tag configured)" "e2e $t $SUBJECT_MARKER" "$(pf_hdr "$f" Subject)"
    assert_eq "secure: inbound mail is not classified" 0 "$(hdr_count "$f" X-NTA7516-Classification)"
    assert_eq "secure: inbound mail gets no footer" 0 "$(grep -c NTA7516-E2E-FOOTER "$f")"
fi
assert_match "secure: audit inbound_verified: spf/dkim/dmarc pass, arrived securely" \
    '"spf":"pass","dkim":"pass","dmarc":"pass","arrived_securely":true' "$(audit_detail "$q" inbound_verified)"
assert_match "secure: audit message_received: inbound from 127.0.10.98 with its TLS version" \
    '"direction":"inbound","client_address":"127\.0\.10\.98",.*"tls_version":"TLSv1\.[23]"' "$(audit_detail "$q" message_received)"

# simple/simple over odd header spacing: the milter must see header values byte for byte
t=$(pf_token)
r="$t@sender.lab.test"
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@ext.lab.test simple "" "X-Nospace:no space after the colon" \
    "X-Spaces:   three spaces  and trailing  " $'X-Folded: first line,\r\n\tsecond line,\r\n  third line'
in_accepted "simple/simple: signed message with odd header spacing and folding accepted" ext "$t" someone@ext.lab.test "$msg" tls
if pf_assert_mail "simple/simple: delivered" pfa "$t" "$r"; then
    ar=$(ours "$PF_FILE")
    assert_match "simple/simple: AR dkim=pass (header values reached the verifier byte for byte)" 'dkim=pass ' "$ar"
    assert_match "simple/simple: AR dmarc=pass" 'dmarc=pass ' "$ar"
    assert_match "simple/simple: X-NTA7516-Inbound: secure" '^secure \(' "$(pf_hdr "$PF_FILE" X-NTA7516-Inbound)"
    assert_eq "simple/simple: dkimverify agrees on the delivered copy" "signature ok" "$(pf_dkimverify "$PF_FILE")"
fi

# --- (b) the same without TLS: insecure ----------------------------------------------------
t=$(pf_token)
r="$t@sender.lab.test"
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@ext.lab.test relaxed ""
in_accepted "no TLS: the same kind of message without STARTTLS accepted" ext "$t" someone@ext.lab.test "$msg" plain
q=$IN_QID
assert_eq "no TLS: swaks did not start TLS" 0 "$(grep -c '^=== TLS started' "$IN_OUT")"
if pf_assert_mail "no TLS: delivered" pfa "$t" "$r"; then
    f=$PF_FILE
    ar=$(ours "$f")
    assert_match "no TLS: AR still dkim=pass, spf=pass, dmarc=pass" 'dkim=pass .*spf=pass .*dmarc=pass ' "$(printf '%s' "$ar" | tr '\n' ' ')"
    assert_match "no TLS: X-NTA7516-Inbound: insecure (not received over TLS; authenticated; NTA party)" \
        '^insecure \(not received over TLS; sender authenticated \(dmarc=pass for [^)]*ext\.lab\.test\); ext\.lab\.test is an NTA 7516 party\)$' \
        "$(pf_hdr "$f" X-NTA7516-Inbound)"
fi
assert_match "no TLS: audit inbound_verified: all pass, not arrived securely" \
    '"dmarc":"pass","arrived_securely":false,"reasons":\["not received over TLS"' "$(audit_detail "$q" inbound_verified)"

# DMARC pass (aligned SPF, no signature) over TLS from a domain that is no NTA 7516 party
t=$(pf_token)
r="$t@sender.lab.test"
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@plainext.lab.test none ""
in_accepted "not a party: message from plainext.lab.test over STARTTLS accepted" ext "$t" someone@plainext.lab.test "$msg" tls
if pf_assert_mail "not a party: delivered" pfa "$t" "$r"; then
    ar=$(ours "$PF_FILE" | tr '\n' ' ')
    # unsigned: mail-auth writes no dkim= clause at all (RFC 8601 would allow dkim=none)
    assert_eq "not a party: AR has no dkim result other than none" 0 "$(printf '%s' "$ar" | grep -Ec 'dkim=(pass|fail|neutral|policy|temperror|permerror)')"
    assert_match "not a party: AR spf=pass" 'spf=pass ' "$ar"
    assert_match "not a party: AR dmarc=pass (aligned SPF)" 'dmarc=pass [^;]*header\.from=plainext\.lab\.test' "$ar"
    assert_match "not a party: insecure (plainext.lab.test is not an NTA 7516 party (nta_record_absent))" \
        '^insecure \(TLSv1\.[23] [^;]*; sender authenticated \(dmarc=pass for [^)]*\); plainext\.lab\.test is not an NTA 7516 party \(nta_record_absent\)\)$' \
        "$(pf_hdr "$PF_FILE" X-NTA7516-Inbound)"
fi

# --- (c) unsigned, from an address SPF does not allow: fails, insecure, delivered ----------
t=$(pf_token)
r="$t@sender.lab.test"
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@ext.lab.test none ""
in_accepted "spoofed: unsigned ext.lab.test message from 127.0.10.97 over STARTTLS accepted (dmarc = none)" spoof "$t" someone@ext.lab.test "$msg" tls
q=$IN_QID
delivered_local "spoofed: delivered locally under dmarc = \"none\"" "$q" "$r"
if pf_assert_mail "spoofed: delivered to the mailbox" pfa "$t" "$r"; then
    f=$PF_FILE
    ar=$(ours "$f" | tr '\n' ' ')
    assert_eq "spoofed: AR has no dkim result other than none" 0 "$(printf '%s' "$ar" | grep -Ec 'dkim=(pass|fail|neutral|policy|temperror|permerror)')"
    assert_match "spoofed: AR spf=fail naming 127.0.10.97" 'spf=fail [^;]*127\.0\.10\.97' "$ar"
    assert_match "spoofed: AR dmarc=fail header.from=ext.lab.test" 'dmarc=fail [^;]*header\.from=ext\.lab\.test' "$ar"
    assert_match "spoofed: X-NTA7516-Inbound: insecure (TLS fine, sender not authenticated (dmarc=fail))" \
        '^insecure \(TLSv1\.[23] [^;]*; sender not authenticated \(dmarc=fail\); ext\.lab\.test is an NTA 7516 party\)$' \
        "$(pf_hdr "$f" X-NTA7516-Inbound)"
fi
assert_match "spoofed: audit inbound_verified: spf fail, dkim none, dmarc fail" \
    '"spf":"fail","dkim":"none","dmarc":"fail","arrived_securely":false' "$(audit_detail "$q" inbound_verified)"

# --- (d) forged headers from outside --------------------------------------------------------
t=$(pf_token)
r="$t@sender.lab.test"
PF_FROM=someone@ext.lab.test pf_accepted "forged: external message with forged NTA 7516 and AR headers accepted" ext "$t" \
    --to "$r" \
    --add-header "X-NTA7516-Inbound: secure (forged by the sender)" \
    --add-header "X-NTA7516-Route: standard" \
    --add-header "X-NTA7516-Bypass: true" \
    --add-header "X-NTA7516-Classification: standard" \
    --add-header "Authentication-Results: $AUTHSERV; dkim=pass header.d=ext.lab.test; spf=pass; dmarc=pass (forged)" \
    --add-header "Authentication-Results: MX.SENDER.LAB.TEST; dmarc=pass (forged, other case)" \
    --add-header "Authentication-Results: mx.other.example; spf=pass smtp.mailfrom=ext.lab.test (foreign)" \
    --add-header "Authentication-Results: $AUTHSERV.evil; dmarc=pass (look-alike)"
q=$PF_QID
delivered_local "forged: delivered locally" "$q" "$r"
pf_assert_nolog "forged: no milter-header-filter action (the forged route header did not steer it)" pfa "$q: milter-header-filter"
if pf_assert_mail "forged: delivered to the mailbox" pfa "$t" "$r"; then
    f=$PF_FILE
    assert_eq "forged: exactly one X-NTA7516-Inbound (ours)" 1 "$(hdr_count "$f" X-NTA7516-Inbound)"
    assert_match "forged: it is our verdict: insecure (not received over TLS ...)" '^insecure \(not received over TLS; ' "$(pf_hdr "$f" X-NTA7516-Inbound)"
    assert_eq "forged: no 'forged by the sender' text left" 0 "$(grep -c 'forged by the sender' "$f")"
    for h in X-NTA7516-Route X-NTA7516-Bypass X-NTA7516-Classification; do
        assert_eq "forged: no $h left" 0 "$(hdr_count "$f" "$h")"
    done
    ar=$(pf_hdr "$f" Authentication-Results)
    assert_eq "forged: exactly one Authentication-Results claims our id (ours)" 1 "$(ours "$f" | grep -c .)"
    assert_eq "forged: the forged our-id results are gone (both spellings)" 0 "$(printf '%s\n' "$ar" | grep -c '(forged')"
    assert_match "forged: ours is the real verdict (spf=pass, dmarc=pass, no dkim=pass)" '^mx\.sender\.lab\.test; spf=pass .*; dmarc=pass ' "$(ours "$f")"
    assert_eq "forged: the foreign Authentication-Results (other authserv-id) is kept" 1 \
        "$(printf '%s\n' "$ar" | grep -c '^mx\.other\.example; spf=pass smtp\.mailfrom=ext\.lab\.test (foreign)$')"
    assert_eq "forged: the look-alike authserv-id ($AUTHSERV.evil) is kept" 1 \
        "$(printf '%s\n' "$ar" | grep -c "^mx\.sender\.lab\.test\.evil; dmarc=pass (look-alike)\$")"
    assert_eq "forged: 3 Authentication-Results in all (ours + 2 kept)" 3 "$(hdr_count "$f" Authentication-Results)"
    assert_eq "forged: ours is the top header field" Authentication-Results "$(top_header "$f")"
    assert_match "forged: ... and the top one is ours" "^$AUTHSERV;" "$(pf_hdr "$f" Authentication-Results | head -n 1)"
fi
removed=$(audit_detail "$q" headers_removed)
assert_match "forged: audit headers_removed names the X-NTA7516-* and bypass headers, from an untrusted client" \
    '"from_trusted_client":false' "$removed"
for h in X-NTA7516-Inbound X-NTA7516-Route X-NTA7516-Bypass X-NTA7516-Classification; do
    assert_match "forged: audit headers_removed lists $h" "\"$h\"" "$removed"
done
assert_eq "forged: audit headers_removed lists both forged Authentication-Results" 2 \
    "$(printf '%s' "$removed" | jq -r '.names[]' 2>/dev/null | grep -ci '^authentication-results$')"

# --- (e) dmarc = "honour" ----------------------------------------------------------------
PF_INBOUND="$INBOUND_BASE
dmarc = \"honour\""
nta_policy fallback
t=$(pf_token)
r="$t@sender.lab.test"
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@ext.lab.test none ""
rc=0
in_send spoof "$t" someone@ext.lab.test "$msg" tls || rc=$?
assert_eq "honour: swaks is refused at end of data (exit 26)" 26 "$rc"
assert_match "honour: 550 5.7.1 with the DMARC reason" \
    '^<[~*]\* 550 5\.7\.1 NTA 7516: DMARC policy of ext\.lab\.test rejects this message \(dmarc=fail\)' "$(cat "$IN_OUT")"
pf_assert_log "honour: smtpd logged the milter's 550 reject" pfa \
    'milter-reject: END-OF-MESSAGE from [^ ]*\[127\.0\.10\.97\]: 5\.7\.1 NTA 7516: DMARC policy of ext\.lab\.test rejects'
rq=$(pf_logline pfa 'milter-reject: END-OF-MESSAGE from [^ ]*\[127\.0\.10\.97\]: 5\.7\.1 NTA 7516: DMARC policy' |
    sed -n 's/.*: \([0-9A-F]*\): milter-reject: END-OF-MESSAGE.*/\1/p' | tail -n 1)
pf_assert_nolog "honour: nothing delivered for the rejected message" pfa "to=<$r>, relay="
assert_eq "honour: the queue is empty" 0 "$(pf_queue pfa | grep -c .)"
assert_eq "honour: nothing in the mailbox" 0 "$(pf_count pfa "$t")"
assert_match "honour: audit rejected (end_of_message) with the reason" \
    '"stage":"end_of_message","reason":"NTA 7516: DMARC policy of ext\.lab\.test rejects' "$(audit_detail "${rq:-none}" rejected)"

# p=quarantine failure: held, not delivered
t=$(pf_token)
r="$t@sender.lab.test"
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@quarext.lab.test none ""
in_accepted "quarantine: spoofed quarext.lab.test message accepted (250)" spoof "$t" someone@quarext.lab.test "$msg" tls
q=$IN_QID
# Postfix logs the hold without the milter's reason text
pf_assert_log "quarantine: cleanup logged the milter's HOLD" pfa \
    "$q: milter-hold: END-OF-MESSAGE from [^ ]*\[127\.0\.10\.97\]: milter triggers HOLD action; from=<someone@quarext\.lab\.test>"
assert_eq "quarantine: the message is on hold (postqueue -j)" hold "$(pf_queued pfa "$q")"
held=$(run_in_lab postcat -c "$(pf_etc pfa)" -h -q "$q" 2>&1)
assert_match "quarantine: the held copy carries our Authentication-Results with dmarc=fail" \
    "^Authentication-Results: $AUTHSERV;" "$held"
assert_match "quarantine: ... dmarc=fail for quarext.lab.test (policy.dmarc=quarantine)" 'dmarc=fail .*header\.from=quarext\.lab\.test policy\.dmarc=quarantine' "$held"
assert_match "quarantine: the held copy says insecure" '^X-NTA7516-Inbound: insecure \(' "$held"
assert_eq "quarantine: nothing in the mailbox" 0 "$(pf_count pfa "$t")"
assert_match "quarantine: audit quarantined with the reason" \
    '"reason":"DMARC p=quarantine failure for quarext\.lab\.test"' "$(audit_detail "$q" quarantined)"
pf_delete pfa "$q"

# passing mail is still delivered under "honour"
t=$(pf_token)
r="$t@sender.lab.test"
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@ext.lab.test relaxed ""
in_accepted "honour: a passing signed message is accepted" ext "$t" someone@ext.lab.test "$msg" tls
if pf_assert_mail "honour: ... and delivered" pfa "$t" "$r"; then
    assert_match "honour: ... as secure" '^secure \(' "$(pf_hdr "$PF_FILE" X-NTA7516-Inbound)"
fi

# --- (f) subject tags ----------------------------------------------------------------------
PF_INBOUND="$INBOUND_BASE
subject_tag_insecure = \"[ONVEILIG] \"
subject_tag_secure = \"[VEILIG] \""
nta_policy fallback
t=$(pf_token)
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@ext.lab.test relaxed ""
in_accepted "tag secure: signed message over STARTTLS accepted" ext "$t" someone@ext.lab.test "$msg" tls
if pf_assert_mail "tag secure: delivered" pfa "$t" "$t@sender.lab.test"; then
    assert_eq "tag secure: Subject starts with [VEILIG]" "[VEILIG] e2e $t $SUBJECT_MARKER" "$(pf_hdr "$PF_FILE" Subject)"
    assert_eq "tag secure: one Subject" 1 "$(hdr_count "$PF_FILE" Subject)"
fi
t=$(pf_token)
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@ext.lab.test relaxed ""
in_accepted "tag insecure: the same without TLS accepted" ext "$t" someone@ext.lab.test "$msg" plain
if pf_assert_mail "tag insecure: delivered" pfa "$t" "$t@sender.lab.test"; then
    assert_eq "tag insecure: Subject starts with [ONVEILIG]" "[ONVEILIG] e2e $t $SUBJECT_MARKER" "$(pf_hdr "$PF_FILE" Subject)"
    assert_eq "tag insecure: one Subject" 1 "$(hdr_count "$PF_FILE" Subject)"
fi
t=$(pf_token)
msg="$LAB/out/in-$t.eml"
in_msg "$msg" "$t" someone@ext.lab.test relaxed -
in_accepted "tag, no Subject: message without Subject accepted" ext "$t" someone@ext.lab.test "$msg" plain
if pf_assert_mail "tag, no Subject: delivered" pfa "$t" "$t@sender.lab.test"; then
    assert_eq "tag, no Subject: a Subject with only the tag was added" "[ONVEILIG]" "$(pf_hdr "$PF_FILE" Subject)"
fi
PF_INBOUND=$INBOUND_BASE
nta_policy fallback

# --- outbound mail: no inbound verification -------------------------------------------------
t=$(pf_token)
r="$t@nta.lab.test"
pf_accepted "outbound: internal message accepted" int "$t" --to "$r"
q=$PF_QID
if pf_assert_mail "outbound: pfb received it" pfb "$t" "$r"; then
    assert_eq "outbound: no X-NTA7516-Inbound" 0 "$(hdr_count "$PF_FILE" X-NTA7516-Inbound)"
    assert_eq "outbound: no Authentication-Results of ours" 0 "$(ours "$PF_FILE" | grep -c .)"
fi
assert_eq "outbound: no inbound_verified audit line for it" "" "$(audit_detail "$q" inbound_verified)"

[ "$E2E_FAILED" -eq 0 ] || pf_dump_logs
exit 0
