#!/usr/bin/env bash
# 32-postfix-portal-route: non_compliant = "portal" on real Postfix, the portal's own mail
# and X-NTA7516-Phone.
#
# Same lab as 30-postfix-milter (lib-postfix.sh). The daemon runs with [policy]
# non_compliant = "portal" and a [portal] section; the real `nta7516-milter portal` runs
# in the lab (LMTP on 127.0.10.1:7524, SQLite store) and submits its notifications with
# /usr/sbin/sendmail into pfa (MAIL_CONFIG = pfa's config directory).
#
# Cases: a secure message with X-NTA7516-Phone to a non-compliant domain goes to the portal
# over LMTP (nta-portal), and the portal's notification reaches that domain's receiver by
# the standard route, DKIM-valid (dkimverify), content-free, one link, without the mark;
# X-NTA7516-Phone to a compliant domain arrives without it (smtp_header_checks) and still
# DKIM-valid; a forged portal mark from a trusted SMTP client is not honoured (the message
# goes to the portal, never in clear to the domain); the portal's address without a mark
# is refused 554 5.7.1; with `[portal] submit` (SMTP to pfa's listener instead of
# sendmail) the notification is handed over by SMTP and arrives the same way, DKIM-valid.
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

pf_lab_up fallback

P="$LAB/portal"
mkdir -p "$P"
PORTAL_FROM=portaal@sender.lab.test
PUBLIC_URL=https://portaal.sender.lab.test
"$NTA_BIN" portal keygen --out "$P/portal.key" >"$LAB/log/portal-keygen.out" 2>&1 ||
    e2e_die "portal keygen failed: $(cat "$LAB/log/portal-keygen.out")"
head -c 32 /dev/urandom >"$P/mail.key"
chmod 600 "$P/mail.key"
printf 'lab-token\n' >"$P/sms.token"
PORTAL_TOML=$(
    cat <<EOF

[portal]
listen = "inet:$PF_INT:7580"
public_url = "$PUBLIC_URL"
lmtp = "inet:$PF_INT:7524"
store = "sqlite:$P/portal.db"
key_file = "$P/portal.key"
from = "$PORTAL_FROM"
organisation = "Lab Ziekenhuis"
mail_key = "$P/mail.key"
audit_file = "$P/portal-audit.log"
sendmail = "/usr/sbin/sendmail"

[portal.sms]
provider = "webhook"
url = "https://sms.lab.test/send"
token_file = "$P/sms.token"
EOF
)
nta_policy portal "$PORTAL_TOML"
assert_eq "route map: a non-compliant recipient goes to the portal's LMTP socket" \
    "nta-portal:inet:[$PF_INT]:7524" \
    "$(run_in_lab postmap -c "$(pf_etc pfa)" -q "x@notlsa.lab.test" "socketmap:inet:$PF_INT:7517:route" 2>&1)"

lab_bg nta-portal env MAIL_CONFIG="$(pf_etc pfa)" "$NTA_BIN" portal --config "$NTA_DAEMON_CONFIG"
portal_down() {
    lab_stop nta-portal
    pf_lab_down
}
trap portal_down EXIT
wait_for "the portal listens on $PF_INT:7524" 50 0.2 \
    ip netns exec "$NETNS" bash -c "exec 3<>/dev/tcp/$PF_INT/7524" ||
    e2e_die "the portal does not listen (see $LAB/log/nta-portal.out)"

# urls FILE : every http(s) URL in the decoded text/plain part of a delivered message
urls() {
    python3 "$E2E_DIR/py/mail_urls.py" "$1"
}

# to_portal LABEL : secure mail with X-NTA7516-Phone from the trusted client to a new
# recipient at the non-compliant domain, delivered to the portal over LMTP (nta-portal);
# sets t (its token), r (the recipient) and q (pfa's queue id)
to_portal() {
    t=$(pf_token)
    r="p$(pf_token)@notlsa.lab.test"
    pf_accepted "$1: secure message with X-NTA7516-Phone to a non-compliant domain accepted" int "$t" \
        --to "$r" --add-header "X-NTA7516-Phone: +31612345678"
    q=$PF_QID
    pf_wait_log pfa "postfix/nta-portal/lmtp\[[0-9]+\]: $q: to=<$r>, relay=[^,]*7524, .*status=sent" ||
        true
    pf_assert_log "$1: delivered over LMTP by nta-portal (the portal had the number: no 550)" pfa \
        "postfix/nta-portal/lmtp\[[0-9]+\]: $q: to=<$r>, relay=[^,]*7524, .*status=sent"
}

# --- secure mail with X-NTA7516-Phone to a non-compliant domain -> portal -> notification --
# (the recipient has its own token: the message's token t is only in its subject and body)
to_portal portal
pf_assert_count "portal: the message itself never reached the domain's MX" 0 pfc "$t"
if pf_assert_mail "notification: the domain's receiver (pfc) got the portal's notification" pfc "$r" "$r"; then
    f=$PF_FILE
    assert_eq "notification: DKIM-valid (dkimverify)" "signature ok" "$(pf_dkimverify "$f")"
    assert_match "notification: signed by d=sender.lab.test" 'd=sender\.lab\.test;' "$(pf_hdr "$f" DKIM-Signature)"
    assert_eq "notification: classified standard (the portal mark)" standard "$(pf_hdr "$f" X-NTA7516-Classification)"
    assert_eq "notification: the mark never leaves" 0 "$(pf_hdr "$f" X-NTA7516-Portal-Mark | grep -c . || true)"
    assert_match "notification: from the portal's address" "<$PORTAL_FROM>" "$(pf_hdr "$f" From)"
    u=$(urls "$f")
    assert_eq "notification: exactly one URL in text/plain" 1 "$(printf '%s\n' "$u" | grep -c .)"
    assert_match "notification: it begins with public_url + /m/" "^$PUBLIC_URL/m/[A-Za-z0-9_-]{43}\$" "$u"
    assert_eq "notification: content-free (no subject or body text of the message)" 0 "$(grep -c "$t" "$f")"
    assert_eq "notification: no footer" 0 "$(grep -c 'NTA7516-E2E-FOOTER' "$f")"
fi
pf_assert_log "notification: pfa sent it by the ordinary smtp transport (FILTER smtp:)" pfa \
    "postfix/smtp\[[0-9]+\]: [0-9A-F]+: to=<$r>, relay=mx\.notlsa\.lab\.test\[127\.0\.10\.26\]:25, .*status=sent"
assert_eq "notification: it never went back into the portal (one LMTP delivery to $r: the message)" 1 \
    "$(grep -cE "postfix/nta-portal/lmtp\[[0-9]+\]: [0-9A-F]+: to=<$r>," "$(pf_log pfa)")"

# --- X-NTA7516-Phone never leaves by SMTP --------------------------------------------------
t=$(pf_token)
r="$t@nta.lab.test"
pf_accepted "phone: secure message with X-NTA7516-Phone to a compliant domain accepted" int "$t" \
    --to "$r" --add-header "X-NTA7516-Phone: +31612345678"
q=$PF_QID
pf_assert_sent "phone: sent by nta-dane" "$q" "$r" nta-dane
if pf_assert_mail "phone: pfb received it" pfb "$t" "$r"; then
    assert_eq "phone: no X-NTA7516-Phone in the delivered copy" 0 "$(grep -ic '^X-NTA7516-Phone' "$PF_FILE")"
    assert_eq "phone: the number is nowhere in it" 0 "$(grep -c '31612345678' "$PF_FILE")"
    assert_eq "phone: DKIM still valid after the header was dropped (never signed)" "signature ok" "$(pf_dkimverify "$PF_FILE")"
fi

# --- a forged portal mark from a trusted SMTP client is not honoured -----------------------
t=$(pf_token)
r="p$(pf_token)@notlsa.lab.test"
forged="v1 $(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
pf_accepted "forged mark: secure message with a made-up portal mark accepted" int "$t" \
    --to "$r" --add-header "X-NTA7516-Portal-Mark: $forged" --add-header "X-NTA7516-Phone: +31612345678"
q=$PF_QID
pf_wait_log pfa "$q: to=<$r>, relay=[^,]*, .*status=sent" || true
pf_assert_log "forged mark: still the secure route (nta-portal)" pfa \
    "postfix/nta-portal/lmtp\[[0-9]+\]: $q: to=<$r>, .*status=sent"
pf_assert_nolog "forged mark: no FILTER smtp: for it" pfa "$q: milter-header-filter"
pf_assert_count "forged mark: nothing with the message's text at the domain's MX" 0 pfc "$t"

# --- the portal's address without a mark: refused ------------------------------------------
t=$(pf_token)
rc=0
PF_FROM="$PORTAL_FROM" pf_send int "$t" --to "$t@notlsa.lab.test" || rc=$?
assert_eq "portal sender without a mark: refused at end of data (swaks exit 26)" 26 "$rc"
assert_match "portal sender without a mark: 554 5.7.1" '^<\*\* 554 5\.7\.1 ' "$(cat "$PF_OUT")"

# --- [portal] submit: the notification by SMTP to pfa, not by sendmail --------------------
lab_stop nta-portal
sed -i "s|^sendmail = \"/usr/sbin/sendmail\"\$|submit = \"inet:$PF_INT:25\"|" "$NTA_DAEMON_CONFIG"
assert_eq "submit: the portal's configuration now submits by SMTP" 1 "$(grep -c "^submit = \"inet:$PF_INT:25\"" "$NTA_DAEMON_CONFIG")"
assert_exit "submit: check-config accepts it" 0 "$NTA_BIN" check-config "$NTA_DAEMON_CONFIG"
# no MAIL_CONFIG, no sendmail: only the SMTP listener can take its mail
lab_bg nta-portal "$NTA_BIN" portal --config "$NTA_DAEMON_CONFIG"
wait_for "the portal listens on $PF_INT:7524 again" 50 0.2 \
    ip netns exec "$NETNS" bash -c "exec 3<>/dev/tcp/$PF_INT/7524" ||
    e2e_die "the portal does not listen (see $LAB/log/nta-portal.out)"
to_portal submit
if pf_assert_mail "submit: the domain's receiver (pfc) got the notification" pfc "$r" "$r"; then
    f=$PF_FILE
    assert_match "submit: handed to pfa by SMTP from the portal (EHLO sender.lab.test, $PF_INT)" \
        "Received: from sender\.lab\.test \([^)]*\[$PF_INT\]\).*with E?SMTP" \
        "$(tr -d '\r' <"$f" | sed -n '/^Received:/{N;N;s/\n[[:space:]]*/ /g;p}')"
    assert_eq "submit: DKIM-valid (dkimverify)" "signature ok" "$(pf_dkimverify "$f")"
    assert_eq "submit: classified standard (the portal mark, checked on the smtpd path)" standard "$(pf_hdr "$f" X-NTA7516-Classification)"
    assert_eq "submit: the mark never leaves" 0 "$(pf_hdr "$f" X-NTA7516-Portal-Mark | grep -c . || true)"
    assert_eq "submit: content-free" 0 "$(grep -c "$t" "$f")"
fi
assert_eq "submit: the notification never went back into the portal" 1 \
    "$(grep -cE "postfix/nta-portal/lmtp\[[0-9]+\]: [0-9A-F]+: to=<$r>," "$(pf_log pfa)")"

lab_stop nta-portal
nta_policy fallback
[ "$E2E_FAILED" -eq 0 ] || { pf_dump_logs; tail -n 30 "$LAB/log/nta-portal.out"; }
exit 0
