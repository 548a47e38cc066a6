#!/usr/bin/env bash
# 30-postfix-milter: what the milter does to real mail through real Postfix.
#
# Same lab as 20-postfix-routes (lib-postfix.sh). The internal client is 127.0.10.1 (in
# [outbound] networks), the external one 127.0.10.98. Evidence: the copies the receivers
# delivered (headers and MIME parts decoded with python3's email module), pfa's log
# (milter-header-filter, transport, relay, status) and python3-dkim's dkimverify against
# the key record published in lab.test.
#
# Cases: classification and header hygiene (forged X-NTA7516-* from an internal client);
# the bypass header from the internal client rescues a non-compliant recipient under EACH
# non_compliant policy (FILTER smtp: overrides transport_maps) and still gets DANE to a
# compliant domain (tls policy map); bypass "false"; the same header from the external
# client is ignored and stripped; the footer in a multipart/alternative message (decoded
# parts, transfer encodings kept); DKIM signatures verified; own From domain without a key
# -> 451 and nothing queued; 8-bit headers and body signed byte for byte and not re-encoded
# for a receiver without 8BITMIME (and broken when conversion is turned on).
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

pf_lab_up fallback

FOOTER_TEXT="NTA7516-E2E-FOOTER plain: sent securely."
FOOTER_HTML='<p class="e2e">NTA7516-E2E-FOOTER html: sent securely.</p>'

# hdr_count FILE NAME : how many NAME header fields the delivered copy has
hdr_count() { pf_hdr "$1" "$2" | grep -c . || true; }

# --- default: secure; forged X-NTA7516-* headers from an internal client are removed -----
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "forged headers: internal message with forged X-NTA7516-Route/-Classification accepted" int "$t" \
    --to "$r" --add-header "X-NTA7516-Route: standard" --add-header "X-NTA7516-Classification: standard"
q=$PF_QID
pf_assert_sent "forged headers: routed by the map (nta-fallback), not by the forged route header" "$q" "$r" nta-fallback
pf_assert_nolog "forged headers: no milter-header-filter action for it" pfa "$q: milter-header-filter"
if pf_assert_mail "forged headers: the fallback relay received it" pfd "$t" "$r"; then
    assert_eq "forged headers: exactly one classification header, 'secure'" "secure" "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
    assert_eq "forged headers: no X-NTA7516-Route header left" 0 "$(hdr_count "$PF_FILE" X-NTA7516-Route)"
    assert_match "forged headers: secure mail carries the footer" "$FOOTER_TEXT" "$(cat "$PF_FILE")"
    assert_eq "forged headers: DKIM signature verifies (dkimverify)" "signature ok" "$(pf_dkimverify "$PF_FILE")"
fi

# --- bypass from the internal client rescues a non-compliant recipient, every policy ----
for policy in fallback bounce defer; do
    nta_policy "$policy"
    t=$(pf_token)
    r="$t@notlsa.lab.test"
    pf_accepted "bypass/$policy: internal message with X-NTA7516-Bypass: true accepted" int "$t" \
        --to "$r" --add-header "X-NTA7516-Bypass: true"
    q=$PF_QID
    pf_assert_log "bypass/$policy: cleanup turned X-NTA7516-Route: standard into FILTER smtp:" pfa \
        "cleanup\[[0-9]+\]: $q: milter-header-filter: header X-NTA7516-Route: standard from .*: smtp:$"
    pf_assert_sent "bypass/$policy: sent by the ordinary smtp transport to the recipient's MX" "$q" "$r" smtp \
        'mx\.notlsa\.lab\.test\[127\.0\.10\.26\]:25'
    pf_assert_nolog "bypass/$policy: no nta-* transport touched it" pfa "nta-[a-z]+/[a-z]+\[[0-9]+\]: $q:"
    if pf_assert_mail "bypass/$policy: the plain MX (pfc) received it" pfc "$t" "$r"; then
        assert_eq "bypass/$policy: classification header 'standard'" "standard" "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
        assert_eq "bypass/$policy: the bypass header itself was removed" 0 "$(hdr_count "$PF_FILE" X-NTA7516-Bypass)"
        # the routing header stays in the message (FILTER does not remove it): what the
        # recipient sees
        assert_eq "bypass/$policy: the recipient sees X-NTA7516-Route: standard (one copy)" "standard" "$(pf_hdr "$PF_FILE" X-NTA7516-Route)"
        assert_eq "bypass/$policy: no footer on mail marked not sensitive" 0 "$(grep -c 'NTA7516-E2E-FOOTER' "$PF_FILE")"
        assert_eq "bypass/$policy: DKIM signature verifies (dkimverify)" "signature ok" "$(pf_dkimverify "$PF_FILE")"
    fi
    assert_eq "bypass/$policy: not in the queue" "" "$(pf_queued pfa "$q")"
    pf_assert_nolog "bypass/$policy: no DSN" pfa "$q: sender non-delivery notification"
    pf_assert_count "bypass/$policy: nothing at the fallback relay" 0 pfd "$t"
done
nta_policy fallback

# --- bypass to a compliant domain: ordinary transport, DANE still enforced --------------
t=$(pf_token)
r="$t@nta.lab.test"
pf_accepted "bypass to compliant: accepted" int "$t" --to "$r" --add-header "X-NTA7516-Bypass: TRUE"
q=$PF_QID
pf_assert_sent "bypass to compliant: sent by smtp (FILTER smtp:) to the DANE MX" "$q" "$r" smtp 'mx\.nta\.lab\.test\[127\.0\.10\.25\]:25'
pf_assert_log "bypass to compliant: the tls map still made it DANE-verified" pfa \
    'postfix/smtp\[[0-9]+\]: Verified TLS connection established to mx\.nta\.lab\.test\[127\.0\.10\.25\]:25'
if pf_assert_mail "bypass to compliant: pfb received it" pfb "$t" "$r"; then
    assert_eq "bypass to compliant: classification 'standard' (value is case-insensitive)" standard "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
fi

# --- bypass "false": sensitive after all -------------------------------------------------
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "bypass false: accepted" int "$t" --to "$r" --add-header "X-NTA7516-Bypass: false"
q=$PF_QID
pf_assert_sent "bypass false: secure route (nta-fallback)" "$q" "$r" nta-fallback
if pf_assert_mail "bypass false: the fallback relay received it" pfd "$t" "$r"; then
    assert_eq "bypass false: classification 'secure'" secure "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
    assert_eq "bypass false: the bypass header was removed" 0 "$(hdr_count "$PF_FILE" X-NTA7516-Bypass)"
fi
pf_assert_count "bypass false: nothing at the plain MX" 0 pfc "$t"

# --- the same header from the external client: ignored and stripped ---------------------
t=$(pf_token)
r="$t@sender.lab.test"
PF_FROM="someone@plain.lab.test" pf_accepted "external: message to our own domain with forged X-NTA7516-* accepted" ext "$t" \
    --to "$r" --add-header "X-NTA7516-Bypass: true" --add-header "X-NTA7516-Route: standard" \
    --add-header "X-NTA7516-Classification: standard"
q=$PF_QID
pf_assert_log "external: delivered locally (virtual) to the own domain" pfa "$q: to=<$r>, relay=virtual, .*status=sent"
pf_assert_nolog "external: no milter-header-filter action (no FILTER smtp:)" pfa "$q: milter-header-filter"
if pf_assert_mail "external: the own mailbox received it" pfa "$t" "$r"; then
    assert_match "external: it came from the external address" '\[127\.0\.10\.98\]' "$(pf_hdr "$PF_FILE" Received)"
    assert_eq "external: no X-NTA7516-Bypass left" 0 "$(hdr_count "$PF_FILE" X-NTA7516-Bypass)"
    assert_eq "external: no X-NTA7516-Route left" 0 "$(hdr_count "$PF_FILE" X-NTA7516-Route)"
    assert_eq "external: no classification header (inbound mail is not classified)" 0 "$(hdr_count "$PF_FILE" X-NTA7516-Classification)"
fi

# --- footer in a multipart/alternative message ------------------------------------------
t=$(pf_token)
r="$t@nta.lab.test"
msg="$LAB/out/multipart-$t.eml"
python3 "$E2E_DIR/py/multipart_message.py" "$msg" "$t" "$r"
pf_accepted "footer: multipart/alternative message accepted" int "$t" --to "$r" --data "$msg"
q=$PF_QID
if pf_assert_mail "footer: pfb received the multipart message" pfb "$t" "$r"; then
    parts=$(python3 "$E2E_DIR/py/mime_parts.py" "$PF_FILE"
    )
    assert_match "footer: still multipart/alternative" '^top multipart/alternative$' "$parts"
    assert_match "footer: text/plain keeps quoted-printable" '^part text/plain quoted-printable$' "$parts"
    assert_match "footer: text/html keeps base64" '^part text/html base64$' "$parts"
    plain=$(printf '%s\n' "$parts" | sed -n 's/^body text\/plain //p')
    html=$(printf '%s\n' "$parts" | sed -n 's/^body text\/html //p')
    assert_match "footer: decoded text/plain has the original text (UTF-8 intact)" "Uitslag van patiënt $t\." "$plain"
    assert_match "footer: decoded text/plain ends with the text footer" "Uitslag van patiënt $t\. .*$FOOTER_TEXT\$" "$plain"
    assert_match "footer: decoded text/html has the original text" "Uitslag van pati&euml;nt $t\." "$html"
    assert_match "footer: decoded text/html has the HTML footer inside the body" "$FOOTER_HTML.*</body>" "$html"
    assert_eq "footer: the HTML footer is not in the text part" 0 "$(printf '%s' "$plain" | grep -c 'class="e2e"')"
    assert_eq "footer: DKIM signature over the changed body verifies (dkimverify)" "signature ok" "$(pf_dkimverify "$PF_FILE")"
fi

# --- DKIM on a simple message: d=, s= and the verdict -----------------------------------
t=$(pf_token)
r="$t@ntamx.lab.test"
pf_accepted "dkim: simple message accepted" int "$t" --to "$r"
if pf_assert_mail "dkim: delivered" pfb "$t" "$r"; then
    sig=$(pf_hdr "$PF_FILE" DKIM-Signature)
    assert_match "dkim: signed with s=e2e d=sender.lab.test" 's=e2e; d=sender\.lab\.test;' "$sig"
    assert_match "dkim: the signature is the first header of the signed part" '^DKIM-Signature:' \
        "$(sed -n '/^Received: from pfa/,$p' "$PF_FILE" | grep -m1 -E '^(DKIM-Signature|Received: from client)')"
    assert_eq "dkim: dkimverify accepts it" "signature ok" "$(pf_dkimverify "$PF_FILE")"
    # tamper: change one body byte; the same verifier must now refuse it
    sed 's/^e2e message /e2e messagE /' "$PF_FILE" >"$LAB/out/tampered-$t.eml"
    assert_match "dkim: a tampered copy fails dkimverify (the check has teeth)" 'body hash mismatch|signature verification failed' \
        "$(pf_dkimverify "$LAB/out/tampered-$t.eml")"
fi

# --- own From domain without a DKIM key: 451, nothing queued ---------------------------
# check-config refuses a listed own domain without [[dkim]]; a subdomain of one (own as
# well) without a key of its own is how this case still arises.
t=$(pf_token)
rc=0
PF_FROM="someone@nokey.sender.lab.test" pf_send int "$t" --to "$t@nta.lab.test" || rc=$?
assert_eq "no key: swaks refused at end of data (exit 26)" 26 "$rc"
assert_match "no key: 451 4.7.0 with the reason" '^<\*\* 451 4\.7\.0 NTA 7516: no DKIM key is configured for own domain nokey\.sender\.lab\.test' "$(cat "$PF_OUT")"
pf_assert_log "no key: smtpd logged the milter's 451" pfa 'milter-reject: END-OF-MESSAGE from .*: 4\.7\.0 NTA 7516: no DKIM key'
pf_assert_count "no key: nothing delivered" 0 pfb "$t"

# --- 8-bit mail: signed byte for byte, and not re-encoded for a receiver without 8BITMIME --
# Raw Latin-1 in To and Cc (legacy clients), an 8-bit body that ends with a blank line
# holding a space (mail-auth hashes that unlike RFC 6376; the milter normalises it). pfc
# stops announcing 8BITMIME for this case; the shipped main.cf's
# disable_mime_output_conversion = yes keeps pfa's smtp client from converting the signed
# body to quoted-printable. Then once more with the conversion on: the signature breaks,
# which proves the setting is what keeps it whole.
pfa_etc=$(pf_etc pfa)
assert_eq "8bit: pfa runs the shipped disable_mime_output_conversion = yes" yes \
    "$(postconf -c "$pfa_etc" -h disable_mime_output_conversion 2>&1)"
postconf -c "$(pf_etc pfc)" -e 'smtpd_discard_ehlo_keywords = 8bitmime'
postfix_ pfc reload >/dev/null 2>&1 || e2e_fail "8bit: pfc reload failed"
# eight_bit TOKEN : writes the message and prints its path
eight_bit() {
    local f="$LAB/out/8bit-$1.eml"
    printf 'From: sender@sender.lab.test\r\nTo: J\366rg M\374ller <%s@notlsa.lab.test>\r\nCc: Gr\374\337e <cc-%s@notlsa.lab.test>\r\nSubject: e2e %s\r\nX-NTA7516-Bypass: true\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nUitslag van pati\353nt %s.\r\n \r\n' \
        "$1" "$1" "$1" "$1" >"$f"
    printf '%s\n' "$f"
}
for conversion in off on; do
    if [ "$conversion" = on ]; then
        postconf -c "$pfa_etc" -e 'disable_mime_output_conversion = no'
        postfix_ pfa reload >/dev/null 2>&1 || e2e_fail "8bit: pfa reload failed"
    fi
    t=$(pf_token)
    r="$t@notlsa.lab.test"
    pf_accepted "8bit/conversion $conversion: accepted" int "$t" --to "$r" --data "$(eight_bit "$t")"
    q=$PF_QID
    pf_assert_sent "8bit/conversion $conversion: to the plain MX without 8BITMIME (FILTER smtp:)" "$q" "$r" smtp \
        'mx\.notlsa\.lab\.test\[127\.0\.10\.26\]:25'
    if pf_assert_mail "8bit/conversion $conversion: pfc received it" pfc "$t" "$r"; then
        if [ "$conversion" = off ]; then
            assert_eq "8bit: left as 8bit (not re-encoded)" 8bit "$(pf_hdr "$PF_FILE" Content-Transfer-Encoding)"
            assert_eq "8bit: the raw Latin-1 bytes of To arrived as sent" 1 \
                "$(grep -c "$(printf '^To: J\366rg M\374ller <')" "$PF_FILE")"
            assert_eq "8bit: DKIM over the raw header bytes and the normalised body verifies (dkimverify)" \
                "signature ok" "$(pf_dkimverify "$PF_FILE")"
        else
            assert_eq "8bit/conversion on: pfa re-encoded the body" quoted-printable \
                "$(pf_hdr "$PF_FILE" Content-Transfer-Encoding)"
            assert_match "8bit/conversion on: so the signature breaks (the setting is what keeps it)" \
                'body hash mismatch|signature verification failed' "$(pf_dkimverify "$PF_FILE")"
        fi
    fi
done
postconf -c "$pfa_etc" -e 'disable_mime_output_conversion = yes'
postfix_ pfa reload >/dev/null 2>&1 || e2e_fail "8bit: pfa reload (restore) failed"
postconf -c "$(pf_etc pfc)" -X smtpd_discard_ehlo_keywords
postfix_ pfc reload >/dev/null 2>&1 || e2e_fail "8bit: pfc reload (restore) failed"

[ "$E2E_FAILED" -eq 0 ] || pf_dump_logs
exit 0
