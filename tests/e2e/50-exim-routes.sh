#!/usr/bin/env bash
# 50-exim-routes: real Exim 4.96 (Debian 12's exim4-daemon-heavy) routes mail by the
# daemon's answers to ${readsocket} route requests, with the shipped exim/ fragments in
# Debian's own configuration (lib-exim.sh).
#
# Exim listens on 127.0.10.3 with Debian's split configuration built by update-exim4.conf
# plus exim/nta7516-milter.{macros,acl,routers,transports}; the daemon's map server is on
# 127.0.10.1:7517. Receivers: pfb (DANE MX, 127.0.10.25), pfc (plain MX, .26), pfd
# (fallback relay with a lab-CA cert, .27). Messages are accepted by the Exim daemon and
# delivered with `exim -M` as root (lib-exim.sh: queue_only in the lab).
# Evidence: Exim's mainlog (R= router, T= transport, H= host, X= TLS, CV=dane / CV=yes),
# exim -bt / -bp / -be, the receivers' maildirs.
#
# Cases: both configurations (split, non-split) parse and route alike (-bt); the raw
# readsocket exchange (-be); compliant -> nta7516_dane with CV=dane; ntamx -> the ntamx
# host, not the MX; two ntamx hosts, the first down -> the second; not compliant ->
# fallback with a verified certificate / bounce (5.7.1) / defer (4.7.1, stays queued,
# leaves by the fallback after a policy change); bogus DNSSEC -> deferred and kept (the
# retry section); daemon down -> deferred, delivered after the restart; one message with
# mixed recipients split per recipient.
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
nonsplit="$(ex_dir)/exim4-nonsplit.conf"

# --- the configurations ---------------------------------------------------------------
assert_match "exim -bV: Exim 4.96 with DANE and DKIM" '^Support for:.* DANE .*DKIM' "$(ex_exim -bV 2>&1)"
assert_true "exim -bV accepts the non-split configuration" ex_exim -C "$nonsplit" -bV
# -bt ADDRESS -> "router transport host..." on one line
route_of() {
    ex_exim "$@" 2>&1 | awk '/^  router = / { gsub(/[,=]/, " "); printf "%s %s", $2, $4; next }
        /^  host / { printf " %s", $2 } /cannot be resolved|undeliverable/ { printf "%s", $0 } END { print "" }'
}
for conf in "$(ex_conf)" "$nonsplit"; do
    v=$([ "$conf" = "$nonsplit" ] && echo non-split || echo split)
    assert_eq "$v -bt: compliant -> nta7516_dane via the MX" "nta7516_dane nta7516_dane mx.nta.lab.test" \
        "$(route_of -C "$conf" -bt user@nta.lab.test)"
    assert_eq "$v -bt: ntamx2 -> nta7516_dane_hosts, both ntamx hosts in order" \
        "nta7516_dane_hosts nta7516_dane down.ntamx2.lab.test relay.ntamx.lab.test" \
        "$(route_of -C "$conf" -bt user@ntamx2.lab.test)"
    assert_eq "$v -bt: not compliant -> nta7516_fallback to the relay" "nta7516_fallback nta7516_fallback fallback.lab.test" \
        "$(route_of -C "$conf" -bt user@notlsa.lab.test)"
    assert_match "$v -bt: bogus -> deferred with the daemon's TEMP" \
        'cannot be resolved at this time: NTA 7516: no route for user@bogus\.lab\.test: TEMP NTA 7516: cannot decide the route' \
        "$(route_of -C "$conf" -bt user@bogus.lab.test)"
    assert_eq "$v -bt: relay_to_domains (plain.lab.test) keep Debian's router" "dnslookup_relay_to_domains remote_smtp mx.nta.lab.test" \
        "$(route_of -C "$conf" -bt user@plain.lab.test)"
done
# the request Exim sends and the reply it reads (the server closes after Exim's half-close)
# shellcheck disable=SC2016 # Exim expansions, not shell
assert_eq "readsocket: netstring request, netstring reply" "24:OK nta-dane:nta.lab.test," \
    "$(ex_exim -be '${readsocket{inet:127.0.10.1:7517}{${strlen:route u@nta.lab.test}:route u@nta.lab.test,}{5s}{}{TEMP readsocket failed}}' 2>&1)"
# shellcheck disable=SC2016 # Exim expansions, not shell
assert_eq "readsocket: own domain -> NOTFOUND" "9:NOTFOUND ," \
    "$(ex_exim -be '${readsocket{inet:127.0.10.1:7517}{${strlen:route u@sender.lab.test}:route u@sender.lab.test,}{5s}{}{TEMP readsocket failed}}' 2>&1)"

# --- compliant: DANE-enforced delivery to the MX --------------------------------------
t=$(pf_token)
r="$t@nta.lab.test"
ex_accepted "compliant: $r accepted" int "$t" --to "$r"
ex_assert_log "compliant: delivered by nta7516_dane to mx.nta.lab.test with DANE (CV=dane)" \
    "$EX_ID => $r R=nta7516_dane T=nta7516_dane H=mx\.nta\.lab\.test \[127\.0\.10\.25\] X=TLS1\.[23]:[^ ]+ CV=dane "
if pf_assert_mail "compliant: pfb (the DANE MX) received it" pfb "$t" "$r"; then
    assert_match "compliant: pfb received it over TLS (ESMTPS)" 'with ESMTPS' "$(cat "$PF_FILE")"
fi
assert_true "compliant: not in the queue any more" ex_gone "$EX_ID"

# --- ntamx: the record's host, not the MX ----------------------------------------------
t=$(pf_token)
r="$t@ntamx.lab.test"
ex_accepted "ntamx: $r accepted" int "$t" --to "$r"
ex_assert_log "ntamx: delivered by nta7516_dane_hosts to relay.ntamx.lab.test with DANE" \
    "$EX_ID => $r R=nta7516_dane_hosts T=nta7516_dane H=relay\.ntamx\.lab\.test \[127\.0\.10\.25\] X=TLS[^ ]+ CV=dane "
pf_assert_mail "ntamx: pfb (ntamx host) received it" pfb "$t" "$r" || true
pf_assert_count "ntamx: the MX mx.ntamx (pfc, no TLSA) got nothing" 0 pfc "$t"

# --- two ntamx hosts, the first down: tried in order ----------------------------------
t=$(pf_token)
r="$t@ntamx2.lab.test"
ex_accepted "ntamx2: $r accepted" int "$t" --to "$r"
ex_assert_log "ntamx2: the first ntamx host was tried (connection refused)" \
    "$EX_ID H=down\.ntamx2\.lab\.test \[127\.0\.10\.28\] Connection refused"
ex_assert_log "ntamx2: then delivered to the second, relay.ntamx.lab.test, with DANE" \
    "$EX_ID => $r R=nta7516_dane_hosts T=nta7516_dane H=relay\.ntamx\.lab\.test \[127\.0\.10\.25\] X=TLS[^ ]+ CV=dane "
pf_assert_mail "ntamx2: pfb received it" pfb "$t" "$r" || true

# --- not compliant, policy fallback -----------------------------------------------------
t=$(pf_token)
r="$t@notlsa.lab.test"
ex_accepted "fallback: $r accepted" int "$t" --to "$r"
ex_assert_log "fallback: delivered by nta7516_fallback to fallback.lab.test, certificate verified (CV=yes)" \
    "$EX_ID => $r R=nta7516_fallback T=nta7516_fallback H=fallback\.lab\.test \[127\.0\.10\.27\] X=TLS[^ ]+ CV=yes DN=\"CN=fallback\.lab\.test\""
pf_assert_mail "fallback: pfd (the relay) received it" pfd "$t" "$r" || true
pf_assert_count "fallback: the recipient's own MX (pfc) got nothing" 0 pfc "$t"

# --- bogus DNSSEC: deferred and kept; the retry section keeps it queued -----------------
t=$(pf_token)
r="$t@bogus.lab.test"
ex_accepted "bogus: $r accepted (routes are decided at delivery)" int "$t" --to "$r"
q=$EX_ID
ex_assert_log "bogus: deferred by nta7516_undecided with the daemon's TEMP reason" \
    "$q == $r R=nta7516_undecided defer \(-1\): NTA 7516: no route for $r: TEMP NTA 7516: cannot decide the route for bogus\.lab\.test"
assert_true "bogus: still in the queue" ex_queued "$q"
assert_match "bogus: Debian's retry rule applies to it (exim -brt)" 'F,2h,15m; G,16h,1h,1\.5; F,4d,6h' "$(ex_exim -brt "$r" 2>&1)"
ex_deliver "$q"
assert_eq "bogus: a second attempt defers again (2 deferrals logged)" 2 "$(ex_logline "$q == $r R=nta7516_undecided defer" | wc -l)"
assert_true "bogus: still queued after the second attempt (not bounced: begin retry)" ex_queued "$q"
ex_assert_nolog "bogus: never bounced" "$q \*\* "
for n in pfb pfc pfd; do
    pf_assert_count "bogus: nothing delivered to $n" 0 "$n" "$t"
done
ex_remove "$q"

# --- the daemon down: deferred, never routed another way; delivered after the restart --
nta_daemon_stop
t=$(pf_token)
r="$t@nta.lab.test"
ex_accepted "daemon down: $r accepted" int "$t" --to "$r"
q=$EX_ID
ex_assert_log "daemon down: deferred (TEMP readsocket failed)" \
    "$q == $r R=nta7516_undecided defer \(-1\): NTA 7516: no route for $r: TEMP readsocket failed"
assert_true "daemon down: still queued" ex_queued "$q"
pf_assert_count "daemon down: nothing delivered" 0 pfb "$t"
nta_daemon_start
ex_deliver "$q"
ex_assert_log "daemon back: the queued message is delivered by nta7516_dane" "$q => $r R=nta7516_dane T=nta7516_dane .* CV=dane "
pf_assert_mail "daemon back: pfb received it" pfb "$t" "$r" || true

# --- not compliant, policy bounce (config change + SIGHUP) ------------------------------
ex_policy bounce
t=$(pf_token)
r="$t@notlsa.lab.test"
ex_accepted "bounce: $r accepted" int "$t" --to "$r"
q=$EX_ID
ex_assert_log "bounce: failed by nta7516_bounce with the daemon's 5.7.1 text" \
    "$q \*\* $r R=nta7516_bounce: 5\.7\.1 NTA 7516: notlsa\.lab\.test cannot receive secure mail directly and no secure alternative is configured"
ex_assert_log "bounce: a DSN to the sender was generated" "<= <> R=$q "
assert_true "bounce: not in the queue any more" ex_gone "$q"
for n in pfc pfd; do
    pf_assert_count "bounce: nothing delivered to $n" 0 "$n" "$t"
done

# --- not compliant, policy defer: stays queued; leaves by the fallback after a change ---
ex_policy defer
t=$(pf_token)
r="$t@notlsa.lab.test"
ex_accepted "defer: $r accepted" int "$t" --to "$r"
q=$EX_ID
ex_assert_log "defer: deferred by nta7516_defer with the daemon's 4.7.1 text" \
    "$q == $r R=nta7516_defer defer \(-1\): 4\.7\.1 NTA 7516: notlsa\.lab\.test cannot receive secure mail directly; held until it can"
assert_true "defer: still queued" ex_queued "$q"
ex_assert_nolog "defer: no DSN for it" "<= <> R=$q "
ex_policy fallback
ex_deliver "$q"
ex_assert_log "defer -> fallback: the held message leaves by nta7516_fallback on the next attempt" \
    "$q => $r R=nta7516_fallback T=nta7516_fallback H=fallback\.lab\.test"
pf_assert_mail "defer -> fallback: pfd received the held message" pfd "$t" "$r" || true
pf_assert_count "defer -> fallback: nothing at pfc" 0 pfc "$t"

# --- one message, mixed recipients: split per recipient ---------------------------------
t=$(pf_token)
rn="$t@nta.lab.test"
rx="$t@notlsa.lab.test"
rb="$t@bogus.lab.test"
ex_accepted "mixed: one message to compliant, not compliant and bogus recipients accepted" int "$t" --to "$rn,$rx,$rb"
q=$EX_ID
ex_assert_log "mixed: compliant recipient by nta7516_dane (DANE)" "$q => $rn R=nta7516_dane T=nta7516_dane .* CV=dane "
ex_assert_log "mixed: not compliant recipient by nta7516_fallback" "$q => $rx R=nta7516_fallback T=nta7516_fallback "
ex_assert_log "mixed: bogus recipient deferred" "$q == $rb R=nta7516_undecided defer"
queue=$(ex_exim -bp 2>&1)
assert_match "mixed: the queue keeps the message for the bogus recipient only" "^ +$rb\$" "$queue"
assert_match "mixed: the delivered recipients are marked D in the queue" "^ +D $rn\$" "$queue"
pf_assert_mail "mixed: pfb received the compliant recipient's copy" pfb "$t" "$rn" || true
pf_assert_mail "mixed: pfd received the not compliant recipient's copy" pfd "$t" "$rx" || true
pf_assert_count "mixed: pfb got only the compliant recipient" 1 pfb "$t"
ex_remove "$q"

[ "$E2E_FAILED" -eq 0 ] || {
    ex_dump_logs
    pf_dump_logs
}
exit 0
