#!/usr/bin/env bash
# 22-postfix-idn: recipient domains that are not plain ASCII host names, on real Postfix
# with SMTPUTF8 on (the Postfix 3.x default: smtputf8_enable = yes).
#
# Postfix maps an internationalised domain to ASCII (UTS #46) before it looks up MX hosts,
# so `x@notlsa．lab.test` (U+FF0E FULLWIDTH FULL STOP) is delivered to the MX of
# notlsa.lab.test. The route map must decide for that domain too: a `NOTFOUND` would send
# secure mail the ordinary way, in clear to a host without TLSA. The same for an address
# literal (`x@[127.0.10.26]`): never an NTA 7516 party, so it takes the non_compliant route.
# A domain that can never be resolved (invalid under UTS #46, or not a host name) is
# bounced at once with a 5.1.2 DSN, under every non_compliant setting.
#
# Evidence: the route answers (postmap -q), pfa's log (relay, dsn, status), the receivers'
# maildirs: pfc (127.0.10.26, mx.notlsa, no TLS) must never receive secure mail.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

pf_lab_up fallback

# SMTPUTF8 on every instance, as in a stock Postfix 3.7 (the lab's base config turns it off)
for n in pfa pfb pfc pfd; do
    run_in_lab postconf -c "$(pf_etc "$n")" -e smtputf8_enable=yes
    postfix_ "$n" reload >/dev/null 2>&1 || e2e_die "postfix $n does not reload"
done
assert_eq "pfa: smtputf8_enable = yes" yes "$(postconf -c "$(pf_etc pfa)" -h smtputf8_enable)"

pfa_etc=$(pf_etc pfa)
# the non-ASCII characters, as bytes (the test must not depend on the locale)
FW=$(printf '\xef\xbc\x8e')   # U+FF0E FULLWIDTH FULL STOP
IDEO=$(printf '\xe3\x80\x82') # U+3002 IDEOGRAPHIC FULL STOP
HALF=$(printf '\xef\xbd\xa1') # U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP
ZWJ=$(printf '\xe2\x80\x8d')  # U+200D ZERO WIDTH JOINER (CONTEXTJ: invalid here)
AIDIG=$(printf '\xd9\xa3\xd9\xa4') # U+0663 U+0664 ARABIC-INDIC DIGITS (bidi rule: invalid alone)

pm() { run_in_lab postmap -c "$pfa_etc" -q "$1" "socketmap:inet:$PF_INT:7517:$2" 2>&1; }

# --- route answers -------------------------------------------------------------------
assert_eq "route: U+FF0E is a full stop (UTS #46): the fallback route of notlsa.lab.test" \
    "nta-fallback:[fallback.lab.test]:25" "$(pm "a@notlsa${FW}lab.test" route)"
assert_eq "route: U+3002, upper case: the fallback route of notlsa.lab.test" \
    "nta-fallback:[fallback.lab.test]:25" "$(pm "a@NOTLSA${IDEO}LAB.TEST" route)"
assert_eq "route: an IDN of a compliant domain's shape goes by its own verdict (U+FF61)" \
    "nta-dane:nta.lab.test" "$(pm "a@nta${HALF}lab.test" route)"
assert_eq "route: an address literal is never an NTA 7516 party: fallback" \
    "nta-fallback:[fallback.lab.test]:25" "$(pm 'a@[127.0.10.26]' route)"
for bad in "not${ZWJ}lsa.lab.test" "${AIDIG}.lab.test" '-foo.lab.test' 'xn--.lab.test' 'a_b.lab.test' 'foo-.lab.test' 'xn--zz.lab.test'; do
    assert_match "route: a@$bad can never be resolved: bounced with 5.1.2" \
        '^nta-bounce:5\.1\.2 NTA 7516: ' "$(pm "a@$bad" route)"
done
assert_exit "tls: an IPv4 literal next hop is not an NTA 7516 party: not found (exit 1)" 1 \
    run_in_lab postmap -c "$pfa_etc" -q '[192.0.2.1]:25' "socketmap:inet:$PF_INT:7517:tls"

# smtputf8 SEND: one message over SMTP from the trusted client, SMTPUTF8 when the recipient
# is not ASCII; prints "250 <queue id>" or the refusal
utf8_send() {
    run_in_lab timeout 30 python3 "$E2E_DIR/py/smtputf8_send.py" "$PF_INT" "$1" "$2"
}

# --- real mail: secure, from the trusted client --------------------------------------
declare -A qid
for r in fw ideo lit; do
    t=$(pf_token)
    case "$r" in
    fw) rcpt="$t@notlsa${FW}lab.test" ;;
    ideo) rcpt="$t@NOTLSA${IDEO}LAB.TEST" ;;
    lit) rcpt="$t@[127.0.10.26]" ;;
    esac
    out=$(utf8_send "$rcpt" "$t")
    assert_match "$r: $rcpt accepted by pfa" '^250 [0-9A-Za-z]+$' "$out"
    qid[$r]=${out#250 }
    eval "tok_$r=\$t"
done
# shellcheck disable=SC2154 # tok_* are set by eval above
for r in fw ideo lit; do
    eval "t=\$tok_$r"
    pf_assert_mail "$r: delivered by the fallback relay (pfd), the secure alternative" pfd "$t"
    pf_assert_count "$r: the plain MX (pfc) never got it" 0 pfc "$t"
done
pf_assert_nolog "no secure message reached the plain MX host (by name or by its address)" pfa 'relay=(mx\.notlsa\.lab\.test|127\.0\.10\.26)'

# the unresolvable ones: accepted, then bounced in the queue (smtpd
# itself refuses some over SMTP, e.g. "-foo": 501 5.1.3; a local submission reaches the
# queue all the same, so those go through sendmail)
for bad in "not${ZWJ}lsa.lab.test" '-foo.lab.test' 'a_b.lab.test'; do
    t=$(pf_token)
    if [ "$bad" = "not${ZWJ}lsa.lab.test" ]; then
        out=$(utf8_send "$t@$bad" "$t")
        assert_match "$bad: accepted by pfa over SMTP (the route decides in the queue)" '^250 [0-9A-Za-z]+$' "$out"
    else
        assert_true "$bad: accepted by pfa's sendmail" pf_sendmail "$t" "$t@$bad"
    fi
    # 5.1.2 from our route, or 5.1.3 when Postfix's own address check already refuses it
    # (it does for "-foo"): a bounce either way, never a deferral or a delivery
    pf_assert_log "$bad: bounced with dsn=5.1.x (not deferred, not sent)" pfa \
        "to=<$t@$bad>, .*dsn=5\\.1\\.[23], status=bounced "
    pf_assert_count "$bad: the plain MX (pfc) never got it" 0 pfc "$t"
done

[ "$E2E_FAILED" -eq 0 ] || pf_dump_logs
exit 0
