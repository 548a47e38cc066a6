#!/usr/bin/env bash
# 51-exim-filter: what real Exim 4.96 does to the message with the shipped exim/ fragments:
# the bypass ACL, `nta7516-milter filter` as transport_filter, DKIM signing by Exim.
#
# Same lab as 50-exim-routes (lib-exim.sh). The internal client is 127.0.10.1
# (relay_from_hosts), the external one 127.0.10.98. Evidence: the copies the receivers
# delivered (headers and MIME parts decoded with python3's email module), Exim's mainlog
# and python3-dkim's dkimverify against the key record published in lab.test.
#
# Cases: header hygiene and classification (forged X-NTA7516-* from an internal client);
# the footer in a multipart/alternative message; DKIM signatures (Exim's, over the
# filter's output, the classification header signed) verified; the bypass header from the
# internal client rescues a non-compliant recipient under EACH non_compliant policy
# (router nta7516_standard, the daemon not asked) and still gets DANE to a compliant
# domain; bypass "false"; [[policy.senders]] and [policy] default applied through the
# ACL's "class <sender>" request (a rule's standard sender goes the ordinary way, the
# bypass header still wins, no answer at DATA means secure); the same header from the
# external client is stripped and
# without effect; own From domain without a DKIM key -> deferred, kept; the filter failing
# (configuration unreadable) -> deferred, kept, delivered once after the fix.
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"
# shellcheck source-path=SCRIPTDIR source=lib-exim.sh
. "$E2E_DIR/lib-exim.sh"

ex_lab_up fallback

FOOTER_TEXT="NTA7516-E2E-FOOTER plain: sent securely."
FOOTER_HTML='<p class="e2e">NTA7516-E2E-FOOTER html: sent securely.</p>'

# hdr_count FILE NAME : how many NAME header fields the delivered copy has
hdr_count() { pf_hdr "$1" "$2" | grep -c . || true; }
# exim_part FILE : the delivered copy from Exim's Received header on (what Exim sent)
exim_part() { sed -n '/^Received: from .*\[127\.0\.10\.[0-9]*\]/,$p' "$1"; }

# --- README step 5: the filter as Debian-exim (group membership, runuser) ---------------
out=$(printf 'From: a@sender.lab.test\nSubject: test\n\nhallo\n' |
    runuser -u Debian-exim -- "$NTA_BIN" filter --classification secure --config "$NTA_DAEMON_CONFIG" 2>&1)
assert_eq "filter by hand as Debian-exim: classification header, footer" \
    "$(printf 'From: a@sender.lab.test\nSubject: test\nX-NTA7516-Classification: secure\n\nhallo\n\n%s' "$FOOTER_TEXT")" "$out"

# --- forged X-NTA7516-* headers from an internal client: removed; secure, footer, DKIM ----
t=$(pf_token)
r="$t@notlsa.lab.test"
ex_accepted "forged headers: internal message with forged X-NTA7516-* headers accepted" int "$t" --to "$r" \
    --add-header "X-NTA7516-Route: standard" --add-header "X-NTA7516-Classification: standard" \
    --add-header "X-NTA7516-Inbound: secure" --add-header "x-nta7516-anything: forged"
ex_assert_log "forged headers: routed by the daemon's answer (nta7516_fallback)" "$EX_ID => $r R=nta7516_fallback T=nta7516_fallback "
if pf_assert_mail "forged headers: the fallback relay received it" pfd "$t" "$r"; then
    assert_eq "forged headers: exactly one classification header, 'secure'" "secure" "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
    assert_eq "forged headers: no other X-NTA7516-* field left" "X-NTA7516-Classification: secure" \
        "$(exim_part "$PF_FILE" | grep -i '^x-nta7516-')"
    assert_match "forged headers: secure mail carries the footer" "^$FOOTER_TEXT\$" "$(cat "$PF_FILE")"
    assert_eq "forged headers: no CR anywhere (the filter kept Exim's LF line endings)" 0 "$(grep -c $'\r' "$PF_FILE")"
    sig=$(pf_hdr "$PF_FILE" DKIM-Signature)
    assert_match "forged headers: Exim signed d=sender.lab.test s=e2e, relaxed, classification header included" \
        'c=relaxed/relaxed;.* d=sender\.lab\.test; s=e2e; h=X-NTA7516-Classification:' "$sig"
    assert_eq "forged headers: DKIM signature verifies (dkimverify)" "signature ok" "$(pf_dkimverify "$PF_FILE")"
    sed 's/^X-NTA7516-Classification: secure$/X-NTA7516-Classification: standard/' "$PF_FILE" >"$LAB/out/tampered-$t.eml"
    assert_match "forged headers: a copy with the classification changed fails dkimverify" 'signature verification failed' \
        "$(pf_dkimverify "$LAB/out/tampered-$t.eml")"
fi

# --- footer in a multipart/alternative message ------------------------------------------
t=$(pf_token)
r="$t@nta.lab.test"
msg="$LAB/out/multipart-$t.eml"
python3 "$E2E_DIR/py/multipart_message.py" "$msg" "$t" "$r"
ex_accepted "footer: multipart/alternative message accepted" int "$t" --to "$r" --data "$msg"
ex_assert_log "footer: delivered by nta7516_dane with DANE" "$EX_ID => $r R=nta7516_dane T=nta7516_dane .* CV=dane "
if pf_assert_mail "footer: pfb received the multipart message" pfb "$t" "$r"; then
    parts=$(python3 "$E2E_DIR/py/mime_parts.py" "$PF_FILE"
    )
    assert_match "footer: still multipart/alternative" '^top multipart/alternative$' "$parts"
    assert_match "footer: text/plain keeps quoted-printable" '^part text/plain quoted-printable$' "$parts"
    assert_match "footer: text/html keeps base64" '^part text/html base64$' "$parts"
    plain=$(printf '%s\n' "$parts" | sed -n 's/^body text\/plain //p')
    html=$(printf '%s\n' "$parts" | sed -n 's/^body text\/html //p')
    assert_match "footer: decoded text/plain ends with the text footer (UTF-8 intact)" "Uitslag van patiënt $t\. .*$FOOTER_TEXT\$" "$plain"
    assert_match "footer: decoded text/html has the HTML footer inside the body" "Uitslag van pati&euml;nt $t\..*$FOOTER_HTML.*</body>" "$html"
    assert_eq "footer: classification secure" secure "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
    assert_eq "footer: DKIM signature over the changed body verifies (dkimverify)" "signature ok" "$(pf_dkimverify "$PF_FILE")"
fi

# --- bypass from the internal client rescues a non-compliant recipient, every policy ----
for policy in fallback bounce defer; do
    ex_policy "$policy"
    t=$(pf_token)
    r="$t@notlsa.lab.test"
    ex_accepted "bypass/$policy: internal message with X-NTA7516-Bypass: true accepted" int "$t" \
        --to "$r" --add-header "X-NTA7516-Bypass: true"
    q=$EX_ID
    ex_assert_log "bypass/$policy: sent by router and transport nta7516_standard to the recipient's MX" \
        "$q => $r R=nta7516_standard T=nta7516_standard H=mx\.notlsa\.lab\.test \[127\.0\.10\.26\]"
    ex_assert_nolog "bypass/$policy: no other nta7516 router touched it" "$q .* R=nta7516_(dane|fallback|bounce|defer|undecided)"
    if pf_assert_mail "bypass/$policy: the plain MX (pfc) received it" pfc "$t" "$r"; then
        assert_eq "bypass/$policy: classification header 'standard'" "standard" "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
        assert_eq "bypass/$policy: the bypass header was removed" 0 "$(hdr_count "$PF_FILE" X-NTA7516-Bypass)"
        assert_eq "bypass/$policy: no footer on mail marked not sensitive" 0 "$(grep -c 'NTA7516-E2E-FOOTER' "$PF_FILE")"
        assert_eq "bypass/$policy: DKIM signature verifies (dkimverify)" "signature ok" "$(pf_dkimverify "$PF_FILE")"
    fi
    assert_true "bypass/$policy: not in the queue" ex_gone "$q"
    ex_assert_nolog "bypass/$policy: no DSN" "<= <> R=$q "
    pf_assert_count "bypass/$policy: nothing at the fallback relay" 0 pfd "$t"
done
ex_policy fallback

# --- bypass to a compliant domain: ordinary route, DANE still insisted on --------------
t=$(pf_token)
r="$t@nta.lab.test"
ex_accepted "bypass to compliant: accepted" int "$t" --to "$r" --add-header "X-NTA7516-Bypass: TRUE"
ex_assert_log "bypass to compliant: nta7516_standard, DANE verified all the same (hosts_try_dane)" \
    "$EX_ID => $r R=nta7516_standard T=nta7516_standard H=mx\.nta\.lab\.test \[127\.0\.10\.25\] X=TLS[^ ]+ CV=dane "
if pf_assert_mail "bypass to compliant: pfb received it" pfb "$t" "$r"; then
    assert_eq "bypass to compliant: classification 'standard' (value is case-insensitive)" standard "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
fi

# --- bypass "false", and two bypass headers: sensitive after all --------------------------
t=$(pf_token)
r="$t@notlsa.lab.test"
ex_accepted "bypass false: accepted" int "$t" --to "$r" --add-header "X-NTA7516-Bypass: false"
ex_assert_log "bypass false: secure route (nta7516_fallback)" "$EX_ID => $r R=nta7516_fallback T=nta7516_fallback "
if pf_assert_mail "bypass false: the fallback relay received it" pfd "$t" "$r"; then
    assert_eq "bypass false: classification 'secure'" secure "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
    assert_eq "bypass false: the bypass header was removed" 0 "$(hdr_count "$PF_FILE" X-NTA7516-Bypass)"
fi
t=$(pf_token)
r="$t@notlsa.lab.test"
ex_accepted "bypass twice: accepted" int "$t" --to "$r" --add-header "X-NTA7516-Bypass: true" --add-header "X-NTA7516-Bypass: false"
ex_assert_log "bypass true + false: secure route (nta7516_fallback)" "$EX_ID => $r R=nta7516_fallback T=nta7516_fallback "

# --- [[policy.senders]] and [policy] default under Exim (the ACL asks: class <sender>) ----
ex_policy fallback "$(printf '[[policy.senders]]\nmatch = ["nieuwsbrief@sender.lab.test"]\nclassification = "standard"\n')"
# shellcheck disable=SC2016 # Exim expansions, not shell
class_of() { ex_exim -be '${readsocket{inet:127.0.10.1:7517}{${strlen:class <'"$1"'>}:class <'"$1"'>,}{5s}{}{TEMP readsocket failed}}' 2>&1; }
assert_eq "sender rule: the class request Exim sends, answered by the rule" "11:OK standard," "$(class_of nieuwsbrief@sender.lab.test)"
assert_eq "sender rule: another sender gets the default" "9:OK secure," "$(class_of sender@sender.lab.test)"
t=$(pf_token)
r="$t@notlsa.lab.test"
EX_FROM=nieuwsbrief@sender.lab.test ex_accepted "sender rule: internal message from the newsletter sender accepted" int "$t" --to "$r"
q=$EX_ID
ex_assert_log "sender rule: classified standard, sent by nta7516_standard to the recipient's MX" \
    "$q => $r R=nta7516_standard T=nta7516_standard H=mx\.notlsa\.lab\.test \[127\.0\.10\.26\]"
if pf_assert_mail "sender rule: the plain MX (pfc) received it" pfc "$t" "$r"; then
    assert_eq "sender rule: classification header 'standard'" standard "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
    assert_eq "sender rule: no footer" 0 "$(grep -c 'NTA7516-E2E-FOOTER' "$PF_FILE")"
    assert_eq "sender rule: DKIM signature verifies (dkimverify)" "signature ok" "$(pf_dkimverify "$PF_FILE")"
fi
t=$(pf_token)
r="$t@notlsa.lab.test"
EX_FROM=nieuwsbrief@sender.lab.test ex_accepted "sender rule + bypass false: accepted" int "$t" --to "$r" \
    --add-header "X-NTA7516-Bypass: false"
ex_assert_log "sender rule + bypass false: the header wins, secure route (nta7516_fallback)" \
    "$EX_ID => $r R=nta7516_fallback T=nta7516_fallback "
t=$(pf_token)
r="$t@notlsa.lab.test"
ex_accepted "sender rule, other sender: accepted" int "$t" --to "$r"
ex_assert_log "sender rule, other sender: the default, secure route (nta7516_fallback)" \
    "$EX_ID => $r R=nta7516_fallback T=nta7516_fallback "
PF_POLICY='default = "standard"' ex_policy fallback \
    "$(printf '[[policy.senders]]\nmatch = ["@geheim.sender.lab.test"]\nclassification = "secure"\n')"
assert_eq "default standard: the class request answers the default" "11:OK standard," "$(class_of sender@sender.lab.test)"
assert_eq "default standard: a secure rule still wins" "9:OK secure," "$(class_of arts@geheim.sender.lab.test)"
t=$(pf_token)
r="$t@notlsa.lab.test"
ex_accepted "default standard: accepted" int "$t" --to "$r"
ex_assert_log "default standard: sent the ordinary way (nta7516_standard)" \
    "$EX_ID => $r R=nta7516_standard T=nta7516_standard H=mx\.notlsa\.lab\.test "
t=$(pf_token)
r="$t@notlsa.lab.test"
EX_FROM=arts@geheim.sender.lab.test ex_accepted "default standard, secure rule: accepted" int "$t" --to "$r"
ex_assert_log "default standard, secure rule: secure route (nta7516_fallback)" \
    "$EX_ID => $r R=nta7516_fallback T=nta7516_fallback "
# daemon unreachable at DATA: no class answer, so secure (the route is then deferred too)
ex_policy fallback
t=$(pf_token)
r="$t@notlsa.lab.test"
nta_daemon_stop
EX_FROM=nieuwsbrief@sender.lab.test ex_accepted "daemon down: accepted (the route waits for the daemon)" int "$t" --to "$r"
q=$EX_ID
nta_daemon_start
ex_policy fallback "$(printf '[[policy.senders]]\nmatch = ["nieuwsbrief@sender.lab.test"]\nclassification = "standard"\n')"
ex_deliver "$q"
ex_assert_log "daemon down at DATA: no class answer means secure, even for the rule's sender (nta7516_fallback)" \
    "$q => $r R=nta7516_fallback T=nta7516_fallback "
ex_policy fallback

# --- the same headers from the external client: stripped, no effect ----------------------
t=$(pf_token)
r="$t@notlsa.lab.test"
rc=0
EX_FROM="someone@plain.lab.test" ex_send ext "$t" --to "$r" --add-header "X-NTA7516-Bypass: true" || rc=$?
assert_eq "external: relaying to a remote domain refused at RCPT (swaks exit 24)" 24 "$rc"
assert_match "external: 550 relay not permitted" '^<\*\* 550 relay not permitted' "$(cat "$EX_OUT")"
t=$(pf_token)
r="$t@plain.lab.test"
EX_FROM="someone@ggd.lab.test" ex_accepted "external: message for a relay_to_domains domain with forged X-NTA7516-* accepted" ext "$t" \
    --to "$r" --add-header "X-NTA7516-Bypass: true" --add-header "X-NTA7516-Route: standard" \
    --add-header "X-NTA7516-Classification: standard"
ex_assert_log "external: Debian's own routing (dnslookup_relay_to_domains), not nta7516_standard" \
    "$EX_ID => $r R=dnslookup_relay_to_domains T=remote_smtp "
if pf_assert_mail "external: the backup-MX target received it" pfb "$t" "$r"; then
    assert_match "external: it came from the external address" '\[127\.0\.10\.98\]' "$(pf_hdr "$PF_FILE" Received)"
    assert_eq "external: no X-NTA7516-* field left (the ACL removed them)" "" "$(exim_part "$PF_FILE" | grep -i '^x-nta7516-')"
fi

# --- own From domain without a DKIM key: deferred, kept, never sent unsigned -------------
t=$(pf_token)
r="$t@nta.lab.test"
EX_FROM="someone@nokey.lab.test" ex_accepted "no key: message From nokey.lab.test (own domain, no key) accepted" int "$t" --to "$r"
q=$EX_ID
ex_assert_log "no key: Exim refuses to send it unsigned (dkim_strict)" \
    "$q DKIM: message could not be signed, and dkim_strict is set\. Deferring message delivery\."
ex_assert_log "no key: the delivery is deferred" "$q == $r R=nta7516_dane T=nta7516_dane defer "
assert_true "no key: still queued" ex_queued "$q"
pf_assert_count "no key: nothing delivered" 0 pfb "$t"
ex_remove "$q"

# --- the filter fails (its configuration unreadable): deferred, delivered once later -----
chmod 600 "$NTA_DAEMON_CONFIG"
t=$(pf_token)
r="$t@nta.lab.test"
ex_accepted "filter failure: message accepted" int "$t" --to "$r"
q=$EX_ID
ex_assert_log "filter failure: the delivery is deferred (transport filter failed)" \
    "$q == $r R=nta7516_dane T=nta7516_dane defer .*transport filter process failed"
assert_true "filter failure: still queued" ex_queued "$q"
pf_assert_count "filter failure: nothing delivered (no partial message accepted)" 0 pfb "$t"
chmod 640 "$NTA_DAEMON_CONFIG"
ex_deliver "$q"
ex_assert_log "filter failure fixed: delivered on the next attempt" "$q => $r R=nta7516_dane T=nta7516_dane .* CV=dane "
if pf_assert_mail "filter failure fixed: pfb received it" pfb "$t" "$r"; then
    pf_assert_count "filter failure fixed: exactly one copy" 1 pfb "$t"
    assert_eq "filter failure fixed: classification secure" secure "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
fi

[ "$E2E_FAILED" -eq 0 ] || {
    ex_dump_logs
    pf_dump_logs
}
exit 0
