#!/usr/bin/env bash
# 40-postfix-resilience: nothing is lost when the daemon is down or reloading.
#
# Same lab as 20-postfix-routes (lib-postfix.sh). Evidence: swaks exit codes and replies,
# pfa's log (milter-reject, deferrals, status=sent), postqueue -j, the receivers'
# maildirs, the daemon's "configuration reloaded" log lines.
#
# Cases: daemon stopped -> clients get 451 (milter default_action=tempfail), nothing is
# queued, and the retry after the restart is delivered; a message already queued when the
# daemon stops stays queued (deferred) while it is down and is delivered by postqueue -f
# once it is back; SIGHUP several times while 50 messages are sent in parallel -> every
# message accepted and delivered, none refused, none lost.
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

pf_lab_up fallback

# --- daemon stopped: the client is told to retry, nothing is queued -------------------
nta_daemon_stop
t=$(pf_token)
r="$t@nta.lab.test"
rc=0
pf_send int "$t" --to "$r" || rc=$?
assert_eq "daemon down: swaks is refused at MAIL FROM (exit 23)" 23 "$rc"
assert_match "daemon down: the reply is 451 4.7.1 (temporary)" '^<\*\* 451 4\.7\.1 ' "$(cat "$PF_OUT")"
pf_assert_log "daemon down: smtpd logged milter-reject 451 4.7.1" pfa \
    'NOQUEUE: milter-reject: MAIL from unknown\[127\.0\.10\.1\]: 451 4\.7\.1 Service unavailable - try again later'
assert_eq "daemon down: nothing queued" 0 "$(pf_queue pfa | grep -c .)"
nta_daemon_start
pf_accepted "daemon back: the client's retry is accepted" int "$t" --to "$r"
q=$PF_QID
pf_assert_sent "daemon back: the retry is sent by nta-dane" "$q" "$r" nta-dane
pf_assert_mail "daemon back: pfb received it" pfb "$t" "$r" || true

# --- a queued message survives the daemon's outage -------------------------------------
pf_stop pfb
wait_for "pfb is down" 50 0.1 sh -c "! ip netns exec '$NETNS' timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.10.25/25' 2>/dev/null" ||
    e2e_die "pfb did not stop"
t=$(pf_token)
r="$t@nta.lab.test"
pf_accepted "queued: accepted while the receiver is down" int "$t" --to "$r"
q=$PF_QID
pf_assert_log "queued: nta-dane deferred it (receiver down)" pfa "nta-dane/smtp\[[0-9]+\]: $q: to=<$r>, .*status=deferred"
nta_daemon_stop
pf_start pfb
n_before=$(pf_logline pfa "$q: to=<$r>, .*status=deferred" | wc -l)
pf_flush pfa
pf_assert_log "queued: retried while the daemon is down -> deferred again" pfa \
    "$q: to=<$r>, .*status=deferred" 75 || true
n_after=$(pf_logline pfa "$q: to=<$r>, .*status=deferred" | wc -l)
assert_true "queued: a second deferral was logged during the outage ($n_before -> $n_after)" test "$n_after" -gt "$n_before"
# which of the two maps notices first depends on qmgr's one-entry resolve cache: the
# route (transport_maps) -> "address resolver failure", or, with the route cached, the
# TLS policy of nta-dane -> "client TLS configuration problem". Both defer; neither sends.
assert_match "queued: the outage deferral names a map failure (4.3.0 resolver / 4.7.5 TLS policy)" \
    'dsn=4\.3\.0, status=deferred \(address resolver failure\)|dsn=4\.7\.5, status=deferred \(client TLS configuration problem\)' \
    "$(pf_logline pfa "$q: to=<$r>, .*status=deferred" | tail -n 1)"
assert_eq "queued: still in the queue (deferred)" deferred "$(pf_queued pfa "$q")"
pf_assert_count "queued: not delivered during the outage" 0 pfb "$t"
nta_daemon_start
pf_flush pfa
pf_assert_sent "queued: delivered by nta-dane after the restart and postqueue -f" "$q" "$r" nta-dane \
    'mx\.nta\.lab\.test\[127\.0\.10\.25\]:25'
pf_assert_mail "queued: pfb received it" pfb "$t" "$r" || true
assert_eq "queued: the queue is empty again" "" "$(pf_queued pfa "$q")"

# --- SIGHUP under load: 50 messages, 5 parallel clients, several reloads ----------------
base=$(pf_token)
workers=5
per=10
total=$((workers * per))
mkdir -p "$LAB/out/load"
# load_worker W : sends PER messages one after the other; records "rc qid" per message
load_worker() {
    local w=$1 i tok rc
    for ((i = 1; i <= per; i++)); do
        tok=$(printf '%s-%d-%02d' "$base" "$w" "$i")
        rc=0
        pf_send int "$tok" --to "$tok@nta.lab.test" || rc=$?
        printf '%s %s %s\n' "$rc" "${PF_QID:-none}" "$tok" >"$LAB/out/load/$tok"
    done
}
reloads_before=$(nta_daemon_reloads)
pids=()
for ((w = 1; w <= workers; w++)); do
    load_worker "$w" &
    pids+=($!)
done
hups=0
# reload while the clients are sending (at least 5 times, bounded)
for ((k = 0; k < 40; k++)); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 1 ] || [ "$hups" -lt 5 ] || break
    nta_daemon_reload
    hups=$((hups + 1))
    sleep 0.2
done
for p in "${pids[@]}"; do wait "$p"; done
reloads_after=$(nta_daemon_reloads)
assert_true "load: $hups SIGHUPs sent while sending (at least 5)" test "$hups" -ge 5
assert_eq "load: every SIGHUP became a reload" "$hups" "$((reloads_after - reloads_before))"
results=$(cat "$LAB/out/load/$base"-* 2>/dev/null)
assert_eq "load: $total messages attempted" "$total" "$(printf '%s\n' "$results" | grep -c .)"
assert_eq "load: every message accepted by pfa (swaks exit 0 with a queue id)" "$total" \
    "$(printf '%s\n' "$results" | awk '$1 == 0 && $2 != "none"' | wc -l)" \
    "$(printf '%s\n' "$results" | awk '$1 != 0 || $2 == "none"' | head -n 5)"
pf_assert_nolog "load: no milter-reject (451) during the reloads" pfa "milter-reject: .*from unknown\[127\.0\.10\.1\]: .*$base"
# shellcheck disable=SC2317 # called through wait_for
load_delivered() { [ "$(pf_count pfb "$base-")" -ge "$total" ]; }
wait_for "all $total load messages delivered" 150 0.2 load_delivered || true
assert_eq "load: $total copies delivered to pfb" "$total" "$(pf_count pfb "$base-")"
assert_eq "load: $total different messages among them (none lost, none twice)" "$total" \
    "$(pf_files pfb "$base-" | xargs -r grep -oh -- "$base-[0-9]-[0-9][0-9]" | sort -u | wc -l)"
assert_eq "load: nothing of it left in pfa's queue" 0 "$(pf_queue pfa | grep -cF -- "$base-" || true)"

[ "$E2E_FAILED" -eq 0 ] || pf_dump_logs
exit 0
