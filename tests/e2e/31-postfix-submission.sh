#!/usr/bin/env bash
# 31-postfix-submission: sender ownership (NTA 7516 6.1.5) on real Postfix.
#
# pfa runs the shipped postfix/master.cf submission service (port 587: STARTTLS required,
# SASL login, smtpd_sender_login_maps = the shipped nta7516-milter_sender_login with the
# lab's domain for its example domain, reject_sender_login_mismatch) and the daemon runs
# with [outbound] require_own_from = true. SASL here is lab-only (Cyrus, a sasldb with
# users jan and marie; the shipped snippet leaves SASL to the site's main.cf), and so is
# the certificate (the lab MX cert). The client is the "external" address 127.0.10.98, so
# the mail counts as outbound only because of the login.
#
# Cases: jan sends as jan@ (and jan+tag@) → delivered, DKIM-signed; jan as marie@ → 553
# 5.7.1 not owned; without login → no relay, and an owned sender is refused; AUTH before
# STARTTLS is not offered; a From header outside [domains] own after a good login → 550
# 5.7.1 from the milter, nothing queued, audited as from_not_own + rejected; the same From
# from the trusted network on port 25 → 550 too; inbound mail with a foreign From passes.
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

PF_OUTBOUND='require_own_from = true'
pf_lab_up fallback

d=$(pf_etc pfa)
mkdir -p "$d/sasl"
printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: %s\n' \
    "$d/sasl/sasldb2" >"$d/sasl/smtpd.conf"
for u in jan marie; do
    printf 'pw-%s' "$u" | saslpasswd2 -p -c -f "$d/sasl/sasldb2" -u pfa.sender.lab.test "$u" ||
        e2e_die "saslpasswd2 failed for $u"
done
chown postfix "$d/sasl/sasldb2"
postconf -c "$d" -e "cyrus_sasl_config_path = $d/sasl" \
    "smtpd_tls_chain_files = $LAB/tls/mx.key, $LAB/tls/mx.crt" ||
    e2e_die "postconf for SASL failed"
postfix_ pfa reload >/dev/null 2>&1 || e2e_die "postfix pfa reload failed"
wait_for "pfa's submission service answers on $PF_INT:587" 50 0.2 \
    ip netns exec "$NETNS" bash -c "exec 3<>/dev/tcp/$PF_INT/587 && head -c 3 <&3 | grep -q 220" ||
    e2e_die "no submission service on $PF_INT:587 (see $(pf_log pfa))"

# submit TOKEN USER|- ENVELOPE_FROM SWAKS_ARGS... : swaks to pfa:587 from the external
# address with STARTTLS, logged in as USER (password pw-USER; "-": no login); output in
# $PF_OUT, queue id in PF_QID; returns swaks' exit status
submit() {
    local token=$1 user=$2 from=$3 rc=0
    shift 3
    local auth=()
    [ "$user" = - ] || auth=(--auth PLAIN --auth-user "$user" --auth-password "pw-$user")
    PF_OUT="$LAB/out/swaks-$token.out"
    run_in_lab_resolv timeout 60 swaks --server "$PF_INT:587" --local-interface "$PF_EXT" \
        --helo client.lab.test --tls "${auth[@]}" --from "$from" \
        --header "Subject: e2e $token" --body "e2e message $token" --timeout 30 "$@" \
        >"$PF_OUT" 2>&1 || rc=$?
    PF_QID=$(sed -n 's/^<[~-]* *250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$PF_OUT" | tail -n 1)
    return "$rc"
}
# audited TYPE QID : the audit trail's TYPE lines for queue id QID (their detail objects)
audited() {
    jq -c --arg t "$1" --arg q "$2" 'select(.event_type == $t and .detail.queue_id == $q) | .detail' \
        "$PF_AUDIT_FILE" 2>/dev/null
}

# --- the login owns the envelope sender: delivered, signed --------------------------------
for from in jan@sender.lab.test jan+lab@sender.lab.test; do
    t=$(pf_token)
    r="$t@nta.lab.test"
    rc=0
    submit "$t" jan "$from" --to "$r" || rc=$?
    assert_eq "owned ($from): jan's submission accepted" "0 yes" "$rc $([ -n "$PF_QID" ] && echo yes)"
    pf_assert_log "owned ($from): smtpd logged the SASL login" pfa \
        "postfix/submission/smtpd\[[0-9]+\]: $PF_QID: client=.*sasl_method=PLAIN, sasl_username=jan"
    if pf_assert_mail "owned ($from): delivered to the compliant MX" pfb "$t" "$r"; then
        assert_eq "owned ($from): DKIM signature verifies (dkimverify)" "signature ok" "$(pf_dkimverify "$PF_FILE")"
        assert_eq "owned ($from): classified secure (outbound by login)" secure "$(pf_hdr "$PF_FILE" X-NTA7516-Classification)"
    fi
done

# --- reject_sender_login_mismatch ---------------------------------------------------------
t=$(pf_token)
rc=0
submit "$t" jan marie@sender.lab.test --to "$t@nta.lab.test" || rc=$?
assert_eq "mismatch: jan as marie@ refused at MAIL/RCPT (swaks exit 23/24)" yes "$([ "$rc" = 23 ] || [ "$rc" = 24 ] && echo yes)"
assert_match "mismatch: 553 5.7.1 not owned by user jan" \
    '<[~*]\* 553 5\.7\.1 <marie@sender\.lab\.test>: Sender address rejected: not owned by user jan' "$(cat "$PF_OUT")"
pf_assert_log "mismatch: smtpd logged the refusal" pfa \
    'postfix/submission/smtpd\[[0-9]+\]: NOQUEUE: reject: RCPT from .*553 5\.7\.1 <marie@sender\.lab\.test>: Sender address rejected: not owned by user jan'
# marie herself may
t=$(pf_token)
rc=0
submit "$t" marie marie@sender.lab.test --to "$t@nta.lab.test" || rc=$?
assert_eq "mismatch: marie as marie@ accepted" 0 "$rc"
# a foreign envelope sender has no owner at all
t=$(pf_token)
rc=0
submit "$t" jan jan@bank.lab.test --to "$t@nta.lab.test" || rc=$?
assert_match "mismatch: jan as jan@bank.lab.test (nobody's) refused" \
    '<[~*]\* 553 5\.7\.1 <jan@bank\.lab\.test>: Sender address rejected: not owned by user jan' "$(cat "$PF_OUT")"

# --- without login ------------------------------------------------------------------------
t=$(pf_token)
rc=0
submit "$t" - jan@sender.lab.test --to "$t@nta.lab.test" || rc=$?
assert_match "no login: an owned sender without login refused (not logged in)" \
    '<[~*]\* 553 5\.7\.1 <jan@sender\.lab\.test>: Sender address rejected: not logged in' "$(cat "$PF_OUT")"
t=$(pf_token)
rc=0
submit "$t" - someone@ext.lab.test --to "$t@nta.lab.test" || rc=$?
assert_match "no login: no relay for an unowned sender either" '<[~*]\* 554 5\.7\.1 .*Access denied' "$(cat "$PF_OUT")"
out=$(run_in_lab timeout 20 swaks --server "$PF_INT:587" --local-interface "$PF_EXT" --quit-after EHLO 2>&1)
assert_eq "no TLS: AUTH is not offered before STARTTLS (smtpd_tls_auth_only)" 0 "$(printf '%s\n' "$out" | grep -c '250-AUTH')"

# --- From header outside [domains] own: the milter refuses ---------------------------------
t=$(pf_token)
rc=0
submit "$t" jan jan@sender.lab.test --to "$t@nta.lab.test" --header "From: Directie <ceo@bank.lab.test>" || rc=$?
assert_eq "foreign From: refused at end of data (swaks exit 26)" 26 "$rc"
assert_match "foreign From: 550 5.7.1 with the reason" \
    '^<[~*]\* 550 5\.7\.1 NTA 7516: the From header domain bank\.lab\.test is not one of our own domains' "$(cat "$PF_OUT")"
re='\]: ([0-9A-F]+): milter-reject: END-OF-MESSAGE from unknown\[127\.0\.10\.98\]: 5\.7\.1 NTA 7516: the From header domain bank\.lab\.test'
pf_assert_log "foreign From: Postfix logged the milter's 550" pfa "$re"
qid=$(pf_logline pfa "$re" | sed -E "s/.*$re.*/\1/" | tail -n 1)
assert_eq "foreign From: audited as from_not_own with the login and the domain" \
    '{"queue_id":"'"$qid"'","sasl_user":"jan","from_domains":["bank.lab.test"]}' "$(audited from_not_own "$qid")"
assert_match "foreign From: audited as rejected (550 5.7.1 text)" '6\.1\.5' "$(audited rejected "$qid")"
pf_assert_count "foreign From: nothing delivered" 0 pfb "$t"
# the same From from the trusted network (port 25, no login)
t=$(pf_token)
rc=0
pf_send int "$t" --to "$t@nta.lab.test" --header "From: ceo@bank.lab.test" || rc=$?
assert_eq "foreign From, trusted network: refused at end of data (exit 26)" 26 "$rc"
assert_match "foreign From, trusted network: 550 5.7.1" '^<[~*]\* 550 5\.7\.1 NTA 7516: the From header domain bank\.lab\.test' "$(cat "$PF_OUT")"
# and an own From from the trusted network still passes
t=$(pf_token)
pf_accepted "own From, trusted network: accepted" int "$t" --to "$t@nta.lab.test"
pf_assert_mail "own From, trusted network: delivered" pfb "$t" "$t@nta.lab.test"
# inbound mail (outside client, no login) is not held to the own-From rule
t=$(pf_token)
PF_FROM=someone@ext.lab.test pf_accepted "inbound: a foreign From from outside is accepted" ext "$t" \
    --to "$t@sender.lab.test" --header "From: someone@ext.lab.test"

# --- self-check's STARTTLS probe against the lab's MX hosts --------------------------------
# pfb (mx.nta.lab.test, 127.0.10.25) has the lab cert and TLSA 3 1 1 in the zone; pfc
# (mx.notlsa.lab.test) has no TLS. self-check takes them for own domains here and
# connects on port 25 (the address through the lab's resolver).
sc="$LAB/selfcheck.toml"
nta_write_config "$sc" "$E2E_RESOLVER_ADDR" "$(printf '[domains]\nown = ["nta.lab.test", "notlsa.lab.test"]\n')"
run_in_lab_resolv timeout 60 "$NTA_BIN" self-check --json --config "$sc" >"$LAB/out/selfcheck.json" 2>"$LAB/out/selfcheck.err"
probe_of() { jq -r --arg d "$1" --arg f "$2" '.domains[] | select(.domain == $d) | .dane[0].starttls[0][$f] // "null"' "$LAB/out/selfcheck.json"; }
check_of() { jq -r --arg d "$1" '.domains[] | select(.domain == $d) | .checks[] | select(.id == "starttls") | .result' "$LAB/out/selfcheck.json"; }
assert_eq "self-check starttls: nta.lab.test passes" pass "$(check_of nta.lab.test)"
assert_eq "self-check starttls: probed mx.nta.lab.test at its address" "127.0.10.25:25" "$(probe_of nta.lab.test address)"
assert_match "self-check starttls: TLS 1.2 or newer" '^TLSv1\.[23]$' "$(probe_of nta.lab.test tls_version)"
assert_match "self-check starttls: the certificate matches the published TLSA 3 1 1" '^3 1 1 [0-9a-f]{64}$' "$(probe_of nta.lab.test tlsa_match)"
assert_match "self-check starttls: days to expiry reported" '^[0-9]+$' "$(probe_of nta.lab.test cert_days_left)"
assert_eq "self-check starttls: notlsa.lab.test (no STARTTLS) fails" fail "$(check_of notlsa.lab.test)"
assert_eq "self-check starttls: the reason" "no STARTTLS offered after EHLO" "$(probe_of notlsa.lab.test detail)"

[ "$E2E_FAILED" -eq 0 ] || pf_dump_logs
exit 0
