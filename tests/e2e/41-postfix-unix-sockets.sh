#!/usr/bin/env bash
# 41-postfix-unix-sockets: the unix-socket variant of postfix/README.md.
#
# The daemon listens on unix:<pfa queue dir>/nta7516-milter/{milter,map}.sock (group
# postfix, mode 0660); pfa is built from the shipped main.cf with the two inet: addresses
# replaced by the README's RELATIVE names unix:nta7516-milter/milter.sock and
# socketmap:unix:nta7516-milter/map.sock (Postfix daemons run in the queue directory).
# Evidence: socket modes, postmap -q with the absolute path, pfa's log and the receivers'
# maildirs. The lab's Postfix services are not chrooted (see postfix/README.md).
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
export PF_SOCKETS=unix
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

pf_lab_up fallback
pfa_etc=$(pf_etc pfa)
sock=$(pf_sockdir)

assert_eq "pfa: smtpd_milters uses the relative unix name" \
    "{ unix:nta7516-milter/milter.sock, default_action=tempfail, command_timeout=15s }" \
    "$(postconf -c "$pfa_etc" -h smtpd_milters)"
assert_eq "pfa: transport_maps uses the relative unix name" \
    "socketmap:unix:nta7516-milter/map.sock:route" "$(postconf -c "$pfa_etc" -h transport_maps)"
assert_eq "pfa: smtp_tls_policy_maps uses the relative unix name" \
    "socketmap:unix:nta7516-milter/map.sock:tls" "$(postconf -c "$pfa_etc" -h smtp_tls_policy_maps)"
for s in milter map; do
    assert_eq "socket $s.sock: mode srw-rw---- group postfix" "srw-rw---- postfix" \
        "$(stat -c '%A %G' "$sock/$s.sock" 2>&1)"
done
assert_eq "postmap -q with the absolute path: compliant -> nta-dane" "nta-dane:nta.lab.test" \
    "$(run_in_lab postmap -c "$pfa_etc" -q user@nta.lab.test "socketmap:unix:$sock/map.sock:route" 2>&1)"

# compliant: milter (smtpd), route (trivial-rewrite) and tls (smtp) all over unix sockets
t=$(pf_token)
r="$t@nta.lab.test"
pf_accepted "unix: compliant message accepted" int "$t" --to "$r"
q=$PF_QID
pf_assert_sent "unix: sent by nta-dane to the DANE MX" "$q" "$r" nta-dane 'mx\.nta\.lab\.test\[127\.0\.10\.25\]:25'
if pf_assert_mail "unix: pfb received it" pfb "$t" "$r"; then
    assert_eq "unix: the milter classified it (secure)" secure "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
    assert_match "unix: the milter signed it" 'd=sender\.lab\.test' "$(pf_hdr "$PF_FILE" DKIM-Signature)"
fi

# not compliant: fallback relay
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "unix: non-compliant message accepted" int "$t" --to "$r"
pf_assert_sent "unix: sent by nta-fallback" "$PF_QID" "$r" nta-fallback 'fallback\.lab\.test\[127\.0\.10\.27\]:25'

# bypass to a compliant domain: ordinary smtp, DANE from the tls map over the unix socket
t=$(pf_token)
r="$t@nta.lab.test"
pf_accepted "unix: bypass message accepted" int "$t" --to "$r" --add-header "X-NTA7516-Bypass: true"
q=$PF_QID
pf_assert_sent "unix: bypass sent by smtp (FILTER smtp:)" "$q" "$r" smtp 'mx\.nta\.lab\.test\[127\.0\.10\.25\]:25'
pf_assert_log "unix: the tls map (unix socket) made the ordinary smtp client verify DANE" pfa \
    'postfix/smtp\[[0-9]+\]: Verified TLS connection established to mx\.nta\.lab\.test\[127\.0\.10\.25\]:25'
pf_assert_nolog "unix: no socket errors in pfa's log" pfa 'nta7516-milter/(milter|map)\.sock: (No such file|Permission denied|Connection refused)'

[ "$E2E_FAILED" -eq 0 ] || pf_dump_logs
exit 0
