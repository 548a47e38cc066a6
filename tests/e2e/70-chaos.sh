#!/usr/bin/env bash
# 70-chaos: faults under a steady load; afterwards nothing is lost, nothing left insecurely,
# nothing left unsigned.
#
# Same mail lab as 20-40 (lib-postfix.sh, policy fallback). Load: chaos/load.py, 20
# parallel SMTP sessions from the trusted client (127.0.10.1) to pfa, CHAOS_COUNT
# (default 2000) one-recipient messages, each with a unique id: compliant (nta.lab.test
# -> pfb over DANE), not compliant (notlsa.lab.test -> the fallback relay pfd), own domain
# (local delivery at pfa), refused by the receiver (pfb answers 550 to reject-*: a DSN to
# the sender) and bogus DNSSEC (451 at RCPT), plus a few bogus local submissions
# (sendmail: queued, deferred). A refused (4xx) message is retried by the driver, as an
# SMTP client keeps and retries it.
# Faults while the load runs, one after the other at fixed shares of the load: SIGKILL of
# the daemon and a restart; Unbound stopped for a few seconds (the daemon killed and
# restarted meanwhile: an empty verdict cache without a resolver); a burst of SIGHUPs;
# the audit log's filesystem (a tmpfs) filled and freed; `postfix reload` of pfa.
# Afterwards (postqueue -f, bounded drain): chaos/account.py puts every message pfa
# accepted into exactly one of delivered (at the receiver its recipient demands), queued,
# bounced (DSN at the sender), lost; and counts copies that arrived insecurely (at pfc,
# or not over TLS, or sent by a plain transport) or unsigned (no DKIM-Signature of
# sender.lab.test that verifies). It prints
#     chaos: accepted N, delivered N, queued N, bounced N, lost 0, insecure 0, unsigned 0
#
# Audit: this daemon writes its own chain on the tmpfs (PF_AUDIT_FILE), not the run's one
# that 90-audit-verify checks: a SIGKILL leaves a startup without its shutdown and a full
# disk leaves refusals that only reached the journal, both by design. That chain must
# still verify. The Postfix logs are moved to $LAB/log/70-chaos/ at the end for the same
# reason (90 reads every pfa.maillog* of the run).
# No `set -e`: a failed assertion is recorded and the next check still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init

# parallel SMTP sessions of the load (the issue's "20 sessions")
CHAOS_SESSIONS=${CHAOS_SESSIONS:-20}
# messages of the load (one recipient each)
CHAOS_COUNT=${CHAOS_COUNT:-2000}
# the driver starts no new attempt after this many seconds (bounds the load phase)
CHAOS_LOAD_SECONDS=${CHAOS_LOAD_SECONDS:-150}
# bogus local submissions (sendmail): must stay queued
CHAOS_LOCAL_BOGUS=10
# size of the audit tmpfs (MiB): the chain of a 2000-message run is about 6 MB
CHAOS_AUDIT_FS_MB=32
# how long each outage lasts (seconds): long enough that the load meets it
CHAOS_OUTAGE=3
# SIGHUPs in the burst, 50 ms apart
CHAOS_HUPS=20
# the drain after the load: rounds of postqueue -f, each waiting up to 10 s
CHAOS_DRAIN_ROUNDS=12

CHAOS="$LAB/chaos"
CHAOS_FS="$CHAOS/auditfs"
CHAOS_LOGS="$LAB/log/70-chaos"
mkdir -p "$CHAOS" "$CHAOS_FS" "$CHAOS_LOGS" "$CHAOS/audit-copy"
# the daemon's audit chain of this case lives on the tmpfs (set before lib-postfix.sh reads it)
PF_AUDIT_FILE="$CHAOS_FS/audit.log"
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

LOAD_PID=""
UNBOUND_STOPPED=0
# chaos_cleanup : everything this case starts or changes, undone (also on failure): the
# driver, the fill file, Unbound (later case files need it), the mail lab, the tmpfs,
# the Postfix logs
chaos_cleanup() {
    local n
    set +e
    if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
        kill -TERM "$LOAD_PID" 2>/dev/null
        wait "$LOAD_PID" 2>/dev/null
    fi
    rm -f "$CHAOS_FS/fill"
    # later case files need the resolver: start it again if we died during its outage
    if [ "$UNBOUND_STOPPED" -eq 1 ] || ! kill -0 "$(cat "$LAB/pids/unbound.pid" 2>/dev/null)" 2>/dev/null; then
        lab_stop unbound
        (unbound_start) || e2e_warn "could not restart Unbound"
    fi
    lib_pf_lab_down
    cp -a "$CHAOS_FS"/. "$CHAOS/audit-copy/" 2>/dev/null
    umount "$CHAOS_FS" 2>/dev/null || umount -l "$CHAOS_FS" 2>/dev/null
    for n in pfa pfb pfc pfd; do
        [ ! -f "$(pf_log "$n")" ] || mv "$(pf_log "$n")" "$CHAOS_LOGS/$n.maillog"
    done
}

# pf_lab_up sets `trap pf_lab_down EXIT`: this case's cleanup takes that name and calls
# the library's own pf_lab_down (kept as lib_pf_lab_down) itself
eval "lib_pf_lab_down() $(declare -f pf_lab_down | tail -n +2)"
pf_lab_down() { chaos_cleanup; }
trap chaos_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
mountpoint -q "$CHAOS_FS" || mount -t tmpfs -o "size=${CHAOS_AUDIT_FS_MB}m,mode=0755" nta7516-chaos "$CHAOS_FS" ||
    e2e_die "cannot mount a tmpfs on $CHAOS_FS"

pf_lab_up fallback
# this case's daemon writes another chain: 90 must not expect a startup of it in the run's
sed -i "/^${E2E_CASE}\$/d" "$LAB/audit/cases"
# reject-* at pfb: a permanent refusal by the receiver, which pfa must bounce to the sender
pf_refuse_rcpt pfb '^reject-' '550 5.1.1 lab: this mailbox refuses mail' reject-probe@nta.lab.test

RUN="chaos$(date +%s)"
LOAD_OUT="$CHAOS/load.tsv"
LOCAL_OUT="$CHAOS/local.tsv"
PROGRESS="$CHAOS/progress"
DAEMON_LOG="$LAB/log/nta-daemon.out"

# --- bogus local submissions: queued first, deferred by the queue manager ---------------
: >"$LOCAL_OUT"
for ((i = 1; i <= CHAOS_LOCAL_BOGUS; i++)); do
    id=$(printf '%s-b%02d' "$RUN" "$i")
    r="$id@bogus.lab.test"
    if printf 'From: sender@sender.lab.test\nTo: %s\nSubject: chaos %s\nX-Chaos-Id: %s\n\nchaos local message %s\n' "$r" "$id" "$id" "$id" |
        run_in_lab_resolv timeout 20 sendmail -C "$(pf_etc pfa)" -f sender@sender.lab.test "$r"; then
        printf '%s\tbogus\t%s\taccepted\tmaildrop\t1\tsendmail exit 0\n' "$id" "$r" >>"$LOCAL_OUT"
    else
        printf '%s\tbogus\t%s\trefused\t-\t1\tsendmail failed\n' "$id" "$r" >>"$LOCAL_OUT"
    fi
done
assert_eq "local: $CHAOS_LOCAL_BOGUS bogus messages submitted with sendmail" "$CHAOS_LOCAL_BOGUS" \
    "$(grep -c $'\taccepted\t' "$LOCAL_OUT")"

# --- the load ---------------------------------------------------------------------------
# messages the driver is done with (accepted, or refused for the last time)
finished() { awk '{ print $4 }' "$PROGRESS" 2>/dev/null || echo 0; }
# wait_load N : until the driver is done with N messages (or ended), at most 120 s
wait_load() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(finished)" -ge "$1" ] && return 0
        kill -0 "$LOAD_PID" 2>/dev/null || return 0
        sleep 0.2
    done
}
# note_load FAULT : log whether the load was still running when FAULT began
note_load() {
    if kill -0 "$LOAD_PID" 2>/dev/null; then
        e2e_log "$1 at $(cat "$PROGRESS" 2>/dev/null) (load running)"
    else
        e2e_warn "$1 after the load had ended (the load was faster than the faults)"
    fi
}

t_load=$SECONDS
timeout -k 5 $((CHAOS_LOAD_SECONDS + 150)) ip netns exec "$NETNS" /usr/bin/python3 "$E2E_DIR/chaos/load.py" \
    --server "$PF_INT" --source "$PF_INT" --run "$RUN" --count "$CHAOS_COUNT" \
    --sessions "$CHAOS_SESSIONS" --deadline "$CHAOS_LOAD_SECONDS" \
    --out "$LOAD_OUT" --progress "$PROGRESS" --refusals "$CHAOS/refusals.tsv" >"$CHAOS/load.out" 2>&1 </dev/null &
LOAD_PID=$!

# (1) SIGKILL the daemon, restart it after the outage
wait_load $((CHAOS_COUNT / 10))
note_load "fault 1: SIGKILL of the daemon"
nta_daemon_kill
old_pid=$NTA_KILLED_PID
assert_true "kill: daemon $old_pid is gone after SIGKILL" sh -c "! kill -0 $old_pid 2>/dev/null"
sleep "$CHAOS_OUTAGE"
nta_daemon_start
assert_true "kill: the restarted daemon listens again" nta_daemon_up

# (2) Unbound stopped for a while; meanwhile the daemon is killed and restarted as well,
# so that its verdict cache is empty and every verdict needs the missing resolver
wait_load $((CHAOS_COUNT * 25 / 100))
note_load "fault 2: Unbound stopped (and the daemon restarted without it)"
UNBOUND_STOPPED=1
lab_stop unbound
assert_true "unbound: the resolver does not answer while stopped" \
    sh -c "! ip netns exec '$NETNS' dig +time=1 +tries=1 @$E2E_RESOLVER_ADDR lab.test SOA >/dev/null"
nta_daemon_kill
nta_daemon_start
assert_true "unbound: the daemon starts and listens without a resolver" nta_daemon_up
sleep "$CHAOS_OUTAGE"
unbound_start
UNBOUND_STOPPED=0
e2e_pass "unbound: started again, validates lab.test (AD) and finds bogus.lab.test bogus"

# (3) a burst of SIGHUPs
wait_load $((CHAOS_COUNT * 40 / 100))
note_load "fault 3: $CHAOS_HUPS SIGHUPs"
reloads_before=$(nta_daemon_reloads)
pid=$(cat "$LAB/pids/nta-daemon.pid")
for ((k = 0; k < CHAOS_HUPS; k++)); do
    kill -HUP "$pid" 2>/dev/null || break
    sleep 0.05
done
wait_for "the daemon logs a reload after the burst" 50 0.2 \
    sh -c "[ \"\$(grep -c '$NTA_RELOAD_LINE' '$DAEMON_LOG')\" -gt $reloads_before ]" || true
# let the reloads the burst queued up finish
sleep 1
reloads_after=$(nta_daemon_reloads)
assert_true "hup: the burst of $CHAOS_HUPS SIGHUPs made reloads ($((reloads_after - reloads_before)))" \
    test "$reloads_after" -gt "$reloads_before"
assert_true "hup: the daemon survived the burst (pid $pid)" kill -0 "$pid"
assert_true "hup: ... and still listens" nta_daemon_up

# (4) the audit log's filesystem fills up and is freed again
wait_load $((CHAOS_COUNT * 55 / 100))
note_load "fault 4: audit filesystem full"
fails_before=$(grep -c 'audit log write failed' "$DAEMON_LOG" || true)
# bounded by the filesystem's size; dd ends with ENOSPC
dd if=/dev/zero of="$CHAOS_FS/fill" bs=1M count=$((CHAOS_AUDIT_FS_MB + 1)) >/dev/null 2>&1 || true
assert_eq "disk: the audit filesystem is full" 0 "$(df --output=avail -B1 "$CHAOS_FS" | tail -n 1 | tr -d ' ')"
# the next message's lines cannot be written (up to a page of them can still land)
wait_for "the daemon fails to write the audit log" 100 0.2 \
    sh -c "[ \"\$(grep -c 'audit log write failed' '$DAEMON_LOG')\" -gt $fails_before ]" || true
fails_after=$(grep -c 'audit log write failed' "$DAEMON_LOG" || true)
assert_true "disk: the daemon logged audit write failures ($((fails_after - fails_before)))" \
    test "$fails_after" -gt "$fails_before"
sleep "$CHAOS_OUTAGE"
rm -f "$CHAOS_FS/fill"
wait_for "the audit chain records its recovery" 100 0.2 grep -q '"event_type":"audit_log_recovered"' "$PF_AUDIT_FILE" || true
assert_true "disk: freed again, the chain records audit_log_recovered" \
    grep -q '"event_type":"audit_log_recovered"' "$PF_AUDIT_FILE"

# (5) postfix reload of pfa
wait_load $((CHAOS_COUNT * 75 / 100))
note_load "fault 5: postfix reload of pfa"
assert_true "reload: postfix reload of pfa" postfix_ pfa reload
pf_assert_log "reload: pfa's master reloaded" pfa 'postfix/master\[[0-9]+\]: reload'

# --- the load ends ----------------------------------------------------------------------
load_rc=0
wait "$LOAD_PID" || load_rc=$?
LOAD_PID=""
e2e_log "load: ended after $((SECONDS - t_load))s: $(cat "$PROGRESS" 2>/dev/null)"
assert_eq "load: the driver ended normally" 0 "$load_rc" "$(tail -n 5 "$CHAOS/load.out")"
assert_eq "load: $CHAOS_COUNT messages recorded" "$CHAOS_COUNT" "$(grep -c . "$LOAD_OUT" 2>/dev/null || echo 0)"
# refused attempts by reply (addresses and queue ids blanked), for the record
e2e_log "load: $(grep -c . "$CHAOS/refusals.tsv" 2>/dev/null || echo 0) refused attempts, by reply:"
awk -F'\t' '{ r = $3; gsub(/<[^>]*>/, "<>", r); gsub(/[0-9A-F]{8,}/, "QID", r); print substr(r, 1, 90) }' \
    "$CHAOS/refusals.tsv" 2>/dev/null | sort | uniq -c | sort -rn | head -n 12 | sed 's/^/        /'
assert_eq "load: no message left unsent (the driver's deadline did not cut the load)" 0 \
    "$(awk -F'\t' '$4 == "unsent"' "$LOAD_OUT" 2>/dev/null | wc -l)"
assert_eq "load: every bogus recipient refused over SMTP (451 4.3.0 at RCPT, none accepted)" 0 \
    "$(awk -F'\t' '$2 == "bogus" && $4 == "accepted"' "$LOAD_OUT" 2>/dev/null | wc -l)"
assert_true "load: the daemon still runs" nta_daemon_up

# --- drain: every queue empties but for what must stay (bogus) --------------------------
# pending : queue entries of pfa (but bogus recipients) and of the receivers
pending() {
    {
        pf_queue pfa | jq -r '.recipients[].address' | grep -v '@bogus\.lab\.test$'
        pf_queue pfb | jq -r '.recipients[].address'
        pf_queue pfd | jq -r '.recipients[].address'
    } | grep -c . || true
}
# shellcheck disable=SC2317 # called through wait_for
drained() { [ "$(pending)" -eq 0 ]; }
t_drain=$SECONDS
for ((round = 1; round <= CHAOS_DRAIN_ROUNDS; round++)); do
    drained && break
    # postqueue -f: retry the deferred mail now, and forget destinations marked dead
    pf_flush pfa
    wait_for "the queues drain (round $round of $CHAOS_DRAIN_ROUNDS)" 20 0.5 drained && break
done
e2e_log "drain: $((SECONDS - t_drain))s, $(pending) entries still queued (bogus excluded)"

# --- accounting -------------------------------------------------------------------------
pf_queue pfa >"$CHAOS/pfa-queue.json"
lab_dig "$PF_DKIM_NAME" TXT +short >"$CHAOS/dkim.txt" 2>&1
acc_rc=0
/usr/bin/python3 "$E2E_DIR/chaos/account.py" --run "$RUN" --results "$LOAD_OUT" --results "$LOCAL_OUT" \
    --maildir "pfa=$(pf_mail pfa)" --maildir "pfb=$(pf_mail pfb)" --maildir "pfc=$(pf_mail pfc)" \
    --maildir "pfd=$(pf_mail pfd)" --queue "$CHAOS/pfa-queue.json" --maillog "$(pf_log pfa)" \
    --dkim-txt "$CHAOS/dkim.txt" --audit "$PF_AUDIT_FILE" >"$CHAOS/account.out" 2>"$CHAOS/account.err" || acc_rc=$?
assert_eq "accounting: account.py ran" 0 "$acc_rc" "$(cat "$CHAOS/account.err")"
c() { awk -v k="$1" '$1 == k { print $2 }' "$CHAOS/account.out"; }
details() { grep "^detail $1 " "$CHAOS/account.out" || true; }
printf 'chaos: accepted %s, delivered %s, queued %s, bounced %s, lost %s, insecure %s, unsigned %s\n' \
    "$(c accepted)" "$(c delivered)" "$(c queued)" "$(c bounced)" "$(c lost)" "$(c insecure)" "$(c unsigned)"
printf 'chaos: refused %s (kept by the client), misrouted %s, unexpected bounces %s, duplicates %s, DKIM verified %s\n' \
    "$(c refused)" "$(c misrouted)" "$(c unexpected_bounce)" "$(c duplicates)" "$(c verified)"

accepted=$(c accepted)
assert_true "chaos: pfa accepted most of the load (${accepted:-?} of $((CHAOS_COUNT + CHAOS_LOCAL_BOGUS)))" \
    test "${accepted:-0}" -ge $((CHAOS_COUNT * 8 / 10))
assert_eq "chaos: 0 lost" 0 "$(c lost)" "$(details lost)"
assert_eq "chaos: 0 delivered insecurely" 0 "$(c insecure)" "$(details insecure)"
assert_eq "chaos: 0 delivered unsigned" 0 "$(c unsigned)" "$(details unsigned)"
assert_eq "chaos: 0 delivered to the wrong receiver or by the wrong transport" 0 "$(c misrouted)" "$(details misrouted)"
assert_eq "chaos: 0 bounces but for the receiver's 550" 0 "$(c unexpected_bounce)" "$(details unexpected_bounce)"
assert_eq "chaos: 0 messages both refused to the client and kept by pfa" 0 "$(c refused_kept)" "$(details refused_kept)"
assert_eq "chaos: every copy that left pfa ($(c left_copies) at pfb and pfd) has a verifying DKIM signature" \
    "$(c left_copies)" "$(c verified)"
assert_eq "chaos: every message accepted over SMTP has its message_received and signed audit lines (none processed unlogged)" \
    0 "$(c unlogged)" "$(details unlogged)"
assert_eq "chaos: the bogus local submissions are still queued" "$CHAOS_LOCAL_BOGUS" \
    "$(jq -r '.recipients[].address' "$CHAOS/pfa-queue.json" | grep -c "^$RUN-b[0-9]*@bogus\.lab\.test\$" || true)"

# --- the chaos chain verifies --------------------------------------------------------
nta_daemon_stop
vrc=0
vout=$("$NTA_BIN" audit verify "$PF_AUDIT_FILE" 2>&1) || vrc=$?
assert_eq "audit: the chain of this case verifies after SIGKILL and a full disk" 0 "$vrc" "$vout"

[ "$E2E_FAILED" -eq 0 ] || pf_dump_logs
exit 0
