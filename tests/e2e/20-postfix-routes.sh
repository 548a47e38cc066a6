#!/usr/bin/env bash
# 20-postfix-routes: real Postfix routes mail by the daemon's socketmap answers.
#
# pfa (127.0.10.1) is configured from the shipped postfix/main.cf, postfix/master.cf and
# postfix/nta7516-milter_header_checks (addresses and paths substituted only) and talks to
# the daemon on 127.0.10.1:7516 (milter) / :7517 (socketmap). Receivers: pfb (DANE MX,
# 127.0.10.25), pfc (plain MX, .26), pfd (fallback relay with a lab-CA cert, .27).
# Evidence: swaks replies, pfa's log lines (transport, relay, dsn, status), the receivers'
# maildirs, the DSN in the sender's mailbox and postqueue -j.
#
# Cases: operability checks (postconf, postmap -q); compliant -> nta-dane with "Verified
# TLS"; ntamx -> the ntamx host, not the MX; two ntamx hosts, the first down -> the second;
# not compliant -> fallback / bounce (DSN 5.7.1) / defer (4.7.1, stays queued; delivered by
# the fallback once the policy changes); bogus DNSSEC -> 451 at RCPT over SMTP, deferred
# and queued when submitted locally; one message with mixed recipients split correctly.
# Every recipient address is unique (qmgr and smtpd cache their last resolved address).
# No `set -e`: a failed assertion is recorded and the next case still runs; setup
# failures end the file through e2e_die.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

pf_lab_up fallback

# --- the instance really runs the shipped snippets ------------------------------------
pfa_etc=$(pf_etc pfa)
for p in smtp_dns_support_level smtp_tls_security_level smtp_tls_dane_insecure_mx_policy \
    smtp_tls_policy_maps transport_maps smtpd_milters non_smtpd_milters milter_default_action \
    milter_header_checks; do
    want=$(pf_shipped_main | sed -n "s/^$p = //p")
    # non_smtpd_milters = $smtpd_milters: compare postconf's unexpanded value
    got=$(postconf -c "$pfa_etc" -hn "$p" 2>&1 || true)
    assert_eq "pfa: $p is the shipped value" "$want" "$got"
done
# one line per service entry, blanks squeezed
svc_words() { tr -s ' \t\n' '   ' | sed 's/^ //; s/ $//'; }
for s in nta-dane nta-fallback nta-bounce nta-defer; do
    assert_eq "pfa: master.cf service $s is the shipped one" \
        "$(awk -v s="$s" '$1 == s { p = 1; print; next } p && /^[ \t]/ { print; next } { p = 0 }' "$PF_SHIPPED/master.cf" | svc_words)" \
        "$(postconf -c "$pfa_etc" -M "$s/unix" 2>&1 | svc_words)"
done
# the operability checks of postfix/README.md
pm() { run_in_lab postmap -c "$pfa_etc" -q "$1" "socketmap:inet:$PF_INT:7517:$2" 2>&1; }
assert_eq "postmap -q route: compliant domain -> nta-dane:<domain>" "nta-dane:nta.lab.test" "$(pm user@nta.lab.test route)"
assert_eq "postmap -q route: ntamx2 -> both ntamx hosts in order" \
    "nta-dane:[down.ntamx2.lab.test]:25, [relay.ntamx.lab.test]:25" "$(pm user@ntamx2.lab.test route)"
assert_eq "postmap -q route: not compliant -> nta-fallback:<relay>" "nta-fallback:[fallback.lab.test]:25" "$(pm user@notlsa.lab.test route)"
assert_eq "postmap -q tls: compliant domain -> dane-only" "dane-only" "$(pm nta.lab.test tls)"
assert_eq "postmap -q tls: [ntamx host]:25 -> dane-only" "dane-only" "$(pm '[relay.ntamx.lab.test]:25' tls)"
assert_exit "postmap -q route: own domain -> not found (exit 1)" 1 \
    run_in_lab postmap -c "$pfa_etc" -q user@sender.lab.test "socketmap:inet:$PF_INT:7517:route"
assert_match "postmap -q route: bogus -> temporary error" "temporary error" "$(pm user@bogus.lab.test route)"

# --- compliant: DANE-enforced delivery to the MX --------------------------------------
t=$(pf_token)
r="$t@nta.lab.test"
pf_accepted "compliant: swaks to $r accepted" int "$t" --to "$r"
q=$PF_QID
pf_assert_sent "compliant: sent by nta-dane to mx.nta.lab.test[127.0.10.25]" "$q" "$r" nta-dane 'mx\.nta\.lab\.test\[127\.0\.10\.25\]:25'
pf_assert_log "compliant: DANE verified (Verified TLS connection to mx.nta.lab.test)" pfa \
    'postfix/nta-dane/smtp\[[0-9]+\]: Verified TLS connection established to mx\.nta\.lab\.test\[127\.0\.10\.25\]:25'
if pf_assert_mail "compliant: pfb (the DANE MX) received it" pfb "$t" "$r"; then
    assert_match "compliant: pfb received it over TLS (ESMTPS)" 'with ESMTPS' "$(cat "$PF_FILE")"
    assert_eq "compliant: classification header secure" "secure" "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
fi

# --- ntamx: the record's host, not the MX ----------------------------------------------
t=$(pf_token)
r="$t@ntamx.lab.test"
pf_accepted "ntamx: swaks to $r accepted" int "$t" --to "$r"
q=$PF_QID
pf_assert_sent "ntamx: sent by nta-dane to relay.ntamx.lab.test (the ntamx host)" "$q" "$r" nta-dane 'relay\.ntamx\.lab\.test\[127\.0\.10\.25\]:25'
pf_assert_mail "ntamx: pfb (ntamx host) received it" pfb "$t" "$r" || true
pf_assert_count "ntamx: the MX mx.ntamx (pfc, no TLSA) got nothing" 0 pfc "$t"

# --- two ntamx hosts, the first down: Postfix tries the list in order -----------------
t=$(pf_token)
r="$t@ntamx2.lab.test"
pf_accepted "ntamx2: swaks to $r accepted" int "$t" --to "$r"
q=$PF_QID
pf_assert_log "ntamx2: the first next hop was tried (connection refused)" pfa \
    'postfix/nta-dane/smtp\[[0-9]+\]: connect to down\.ntamx2\.lab\.test\[127\.0\.10\.28\]:25: Connection refused'
pf_assert_sent "ntamx2: then sent to the second next hop relay.ntamx.lab.test" "$q" "$r" nta-dane 'relay\.ntamx\.lab\.test\[127\.0\.10\.25\]:25'
pf_assert_mail "ntamx2: pfb received it" pfb "$t" "$r" || true

# --- not compliant, policy fallback -----------------------------------------------------
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "fallback: swaks to $r accepted" int "$t" --to "$r"
q=$PF_QID
pf_assert_sent "fallback: sent by nta-fallback to fallback.lab.test[127.0.10.27]" "$q" "$r" nta-fallback 'fallback\.lab\.test\[127\.0\.10\.27\]:25'
pf_assert_log "fallback: certificate-verified TLS to the relay" pfa \
    'postfix/nta-fallback/smtp\[[0-9]+\]: Verified TLS connection established to fallback\.lab\.test\[127\.0\.10\.27\]:25'
pf_assert_mail "fallback: pfd (the relay) received it" pfd "$t" "$r" || true
pf_assert_count "fallback: the recipient's own MX (pfc) got nothing" 0 pfc "$t"

# --- not compliant, policy bounce (config change + SIGHUP) ------------------------------
nta_policy bounce
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "bounce: swaks to $r accepted (250 at RCPT: bypass could still rescue it)" int "$t" --to "$r"
q=$PF_QID
assert_match "bounce: RCPT answered 250" "^<-  250 2\.1\.5" "$(grep -A1 "RCPT TO:<$r>" "$PF_OUT" | tail -n 1)"
pf_assert_log "bounce: nta-bounce (error(8) as \"error\") bounced it with 5.7.1 and the map's text" pfa \
    "postfix/nta-bounce/error\[[0-9]+\]: $q: to=<$r>, relay=none, .*dsn=5\.7\.1, status=bounced \(NTA 7516: notlsa\.lab\.test cannot receive secure mail directly"
if pf_assert_mail "bounce: the sender got a DSN" pfa "$q" sender@sender.lab.test; then
    dsn=$(cat "$PF_FILE")
    assert_match "bounce: DSN says Status: 5.7.1" '^Status: 5\.7\.1' "$dsn"
    assert_match "bounce: DSN names the recipient" "^Final-Recipient: rfc822; $r" "$dsn"
    assert_match "bounce: DSN carries the NTA 7516 reason" 'Diagnostic-Code: X-Postfix; NTA 7516: notlsa\.lab\.test cannot' "$dsn"
fi
assert_eq "bounce: not in the queue any more" "" "$(pf_queued pfa "$q")"
pf_assert_count "bounce: nothing delivered to pfc" 0 pfc "$t"
pf_assert_count "bounce: nothing delivered to pfd" 0 pfd "$t"

# --- not compliant, policy defer (config change + daemon restart) -----------------------
nta_daemon_stop
nta_daemon_config defer
nta_daemon_start
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "defer: swaks to $r accepted" int "$t" --to "$r"
q=$PF_QID
pf_assert_log "defer: nta-defer (error(8) as \"retry\") deferred it with 4.7.1" pfa \
    "postfix/nta-defer/error\[[0-9]+\]: $q: to=<$r>, relay=none, .*dsn=4\.7\.1, status=deferred \(NTA 7516: notlsa\.lab\.test cannot receive secure mail directly; held"
assert_eq "defer: still queued (postqueue -j: deferred)" deferred "$(pf_queued pfa "$q")"
assert_match "defer: the queue entry carries the reason" 'NTA 7516: notlsa\.lab\.test' \
    "$(pf_queue pfa | jq -r --arg q "$q" 'select(.queue_id == $q) | .recipients[].delay_reason')"
pf_assert_count "defer: nothing delivered to pfc" 0 pfc "$t"
pf_assert_count "defer: nothing delivered to pfd" 0 pfd "$t"
pf_assert_nolog "defer: no DSN for it" pfa "$q: sender non-delivery notification"
# the route is looked up again on every retry: after a switch to fallback it leaves.
# qmgr keeps a one-entry cache of its last resolved address (resolve_clnt.c): let it
# resolve another address first, as it would on any busy server, then flush.
nta_policy fallback
t2=$(pf_token)
pf_accepted "defer -> fallback: another message (clears qmgr's one-entry cache)" int "$t2" --to "$t2@nta.lab.test"
pf_assert_sent "defer -> fallback: the other message was sent" "$PF_QID" "$t2@nta.lab.test" nta-dane
pf_flush pfa
pf_assert_sent "defer -> fallback: the held message is sent by nta-fallback after postqueue -f" "$q" "$r" nta-fallback
pf_assert_mail "defer -> fallback: pfd received the held message" pfd "$t" "$r" || true

# --- bogus DNSSEC: never decided, never delivered, never lost ---------------------------
t=$(pf_token)
r="$t@bogus.lab.test"
rc=0
pf_send int "$t" --to "$r" || rc=$?
assert_eq "bogus over SMTP: swaks fails at RCPT (exit 24)" 24 "$rc"
assert_match "bogus over SMTP: RCPT answered 451 4.3.0" "^<\*\* 451 4\.3\.0 <$r>: Temporary lookup failure" "$(cat "$PF_OUT")"
pf_assert_log "bogus over SMTP: smtpd logged the 451 reject" pfa "NOQUEUE: reject: RCPT from .*451 4\.3\.0 <$r>: Temporary lookup failure"
# a local submission (sendmail, non_smtpd_milters) is queued first: the queue manager defers
# it through the "retry" service. Regression check for postfix/master.cf: with maxproc > 1
# on nta-defer (error -n retry), the idle nta-defer process of the case above would hold
# the accept lock of "retry" and this deferral would hang for up to 100 s.
t=$(pf_token)
r="$t@bogus.lab.test"
assert_true "bogus via sendmail: submitted" pf_sendmail "$t" "$r"
pf_assert_log "bogus via sendmail: deferred (4.3.0 address resolver failure)" pfa \
    "postfix/error\[[0-9]+\]: [0-9A-F]+: to=<$r>, relay=none, .*dsn=4\.3\.0, status=deferred \(address resolver failure\)" 100
q=$(pf_logline pfa "to=<$r>, .*status=deferred" | sed -n 's/.*: \([0-9A-F]*\): to=.*/\1/p' | head -n 1)
assert_eq "bogus via sendmail: still queued (deferred)" deferred "$(pf_queued pfa "${q:-none}")"
for n in pfb pfc pfd; do
    pf_assert_count "bogus: nothing delivered to $n" 0 "$n" "$t"
done
[ -z "$q" ] || pf_delete pfa "$q"

# --- one message, mixed recipients: split per recipient ---------------------------------
t=$(pf_token)
rn="$t@nta.lab.test"
rx="$t@notlsa.lab.test"
ri="$t@insecure.lab.test"
rb="$t@bogus.lab.test"
pf_accepted "mixed: swaks accepted the message (3 of 4 recipients)" int "$t" --to "$rn,$rx,$rb,$ri"
q=$PF_QID
out=$(cat "$PF_OUT")
assert_match "mixed: RCPT bogus answered 451 4.3.0" "^<\*\* 451 4\.3\.0 <$rb>" "$out"
assert_eq "mixed: the other three RCPTs answered 250" 3 "$(grep -c '^<-  250 2\.1\.5' "$PF_OUT")"
pf_assert_sent "mixed: compliant recipient by nta-dane to the DANE MX" "$q" "$rn" nta-dane 'mx\.nta\.lab\.test\[127\.0\.10\.25\]:25'
pf_assert_sent "mixed: no-TLSA recipient by nta-fallback" "$q" "$rx" nta-fallback 'fallback\.lab\.test\[127\.0\.10\.27\]:25'
pf_assert_sent "mixed: insecure-zone recipient by nta-fallback" "$q" "$ri" nta-fallback 'fallback\.lab\.test\[127\.0\.10\.27\]:25'
pf_assert_mail "mixed: pfb received the compliant recipient's copy" pfb "$t" "$rn" || true
pf_assert_mail "mixed: pfd received the no-TLSA recipient's copy" pfd "$t" "$rx" || true
pf_assert_mail "mixed: pfd received the insecure recipient's copy" pfd "$t" "$ri" || true
pf_assert_count "mixed: pfb got only the compliant recipient" 1 pfb "$t"
pf_assert_count "mixed: pfc (plain MX) got nothing" 0 pfc "$t"
assert_eq "mixed: nothing left in the queue" "" "$(pf_queued pfa "$q")"
pf_assert_nolog "mixed: the bogus recipient never reached the queue" pfa "$q: to=<$rb>"

[ "$E2E_FAILED" -eq 0 ] || pf_dump_logs
exit 0
