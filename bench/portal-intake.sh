#!/usr/bin/env bash
# bench/portal-intake.sh: how fast Postfix can hand 10 KB messages to the portal over LMTP
# (RFC 2033), against Postfix handing the same messages to Dovecot's LMTP server, in ONE
# run on this machine.
#
#     sudo bench/portal-intake.sh
#
# One Postfix 3.7 instance (127.0.10.1:25) in a private network namespace with loopback
# only; smtp-source sends to it; its transport map sends each test domain to one LMTP
# server on loopback TCP:
#     dovecot        dovecot.bench.test -> Dovecot 2.3 (Debian 12 dovecot-lmtpd), maildir,
#                    mail_fsync = optimized (its default: each saved message is fsynced
#                    before it is acknowledged; BENCH_DOVECOT_FSYNC=always for more)
#     portal-sqlite  sqlite.bench.test  -> `nta7516-milter portal`, SQLite store (WAL,
#                    synchronous=FULL), encrypted, hash-chained audit file
#     portal-pg      pg.bench.test      -> `nta7516-milter portal`, PostgreSQL 15 store
#                    (Debian 12, fsync on, the server's defaults), encrypted, audited
# Every message carries a number tag in its subject ([sms:+31612345678]) so the portal stores
# it at once. The portal's notification and receipt (sent after the 250) are discarded:
# delivering them is Postfix's work, not intake. BENCH_PORTAL_SUBMIT=sendmail (default):
# each goes to a sendmail stub (sh + cat > /dev/null), one program run per mail, as with
# [portal] sendmail; =smtp: [portal] submit, SMTP to an smtp-sink on 127.0.10.2:2525 over
# the portal's kept-open connections.
#
# Load: smtp-source -s SESSIONS -l SIZE -m N -N (a new connection per message, a unique
# recipient per message). Rate = N / (time from smtp-source's start until the last of the N
# is logged `status=sent` by the lmtp client and the queue is empty). Rounds alternate the
# order of the variants; the medians are reported.
#
# Environment (all optional):
#     BENCH_MESSAGES=2000  BENCH_SESSIONS=20  BENCH_SIZE=10240  BENCH_ROUNDS=3
#     BENCH_WARMUP=N       unmeasured messages per variant before the rounds (default: as
#                          many as a round: smtp-source -N numbers recipients from 0 in
#                          each run, so the rounds deliver to mailboxes Dovecot already
#                          has, as a mail server does, not a new maildir per message)
#     BENCH_VARIANTS="dovecot portal-sqlite portal-pg"
#     BENCH_DOVECOT_FSYNC=optimized   Dovecot's mail_fsync
#     BENCH_PORTAL_SUBMIT=sendmail    how the portals submit their own mail: sendmail | smtp
#     NTA_BIN=path         use this binary instead of `cargo build --release`
#     BENCH_KEEP=1         keep the lab directory (logs)
#     BENCH_SUMMARY=file   also write the summary to this file
#
# Bounded everywhere (timeouts on every client, bounded polling); an EXIT trap stops and
# removes everything it started: Postfix, Dovecot, PostgreSQL, both portals, the
# namespace, the cgroups and the lab directory.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
. "$BENCH_REPO/tests/e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib-postfix.sh
. "$BENCH_REPO/tests/e2e/lib-postfix.sh"

N=${BENCH_MESSAGES:-2000}
SESSIONS=${BENCH_SESSIONS:-20}
SIZE=${BENCH_SIZE:-10240}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-$N}
DOVECOT_FSYNC=${BENCH_DOVECOT_FSYNC:-optimized}
PORTAL_SUBMIT=${BENCH_PORTAL_SUBMIT:-sendmail}
SINK=127.0.10.2:2525
case "$PORTAL_SUBMIT" in
sendmail | smtp) ;;
*) e2e_die "BENCH_PORTAL_SUBMIT must be sendmail or smtp, not $PORTAL_SUBMIT" ;;
esac
read -r -a VARIANTS <<<"${BENCH_VARIANTS:-dovecot portal-sqlite portal-pg}"
[ "${BENCH_KEEP:-0}" = 1 ] && export NTA_E2E_KEEP=1

ADDR=127.0.10.1
FROM=sender@sender.bench.test
SUBJECT="[sms:+31612345678] bench"
DRAIN_TRIES=6000 # x 0.1 s = 600 s per phase
PG_BIN=${NTA_PG_BIN:-/usr/lib/postgresql/15/bin}

blog() { printf '[bench] %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || {
    echo "bench/portal-intake.sh: run as root (sudo): it creates a network namespace" >&2
    exit 1
}

# variant -> recipient domain, LMTP port
domain_of() {
    case "$1" in
    dovecot) echo dovecot.bench.test ;; portal-sqlite) echo sqlite.bench.test ;; portal-pg) echo pg.bench.test ;;
    *) e2e_die "unknown variant $1" ;;
    esac
}
port_of() {
    case "$1" in
    dovecot) echo 7624 ;; portal-sqlite) echo 7524 ;; portal-pg) echo 7534 ;;
    *) e2e_die "unknown variant $1" ;;
    esac
}
has_variant() { [[ " ${VARIANTS[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------
# Packages (only missing ones installed)
BENCH_PKGS=(iproute2 procps util-linux coreutils openssl postfix postfix-pcre dovecot-core
    dovecot-lmtpd postgresql python3 jq)

# CPU accounting (bench/lib-bench.sh): one child cgroup per component
CG_GROUPS=(postfix dovecot portal pg load)
# shellcheck source-path=SCRIPTDIR source=lib-bench.sh
. "$BENCH_DIR/lib-bench.sh"

bench_cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "${LAB:-}" ]; then
        pf_stop bench
        # the portals before their database (a portal gives its expiry lease back on exit)
        lab_stop portal-pg
        lab_stop portal-sqlite
        [ ! -d "$LAB/pg/data" ] || run_in_lab runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$LAB/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1
        lab_down
    fi
    cg_teardown
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'blog interrupted; exit 130' INT TERM

build_binary() {
    if [ -n "${NTA_BIN:-}" ]; then
        [ -x "$NTA_BIN" ] || e2e_die "NTA_BIN=$NTA_BIN is not executable"
        BUILD_NOTE="binary from NTA_BIN ($NTA_BIN)"
        return 0
    fi
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/nta7516-bench-build.XXXXXX")
    blog "cargo build --release ..."
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        sudo -u "$SUDO_USER" -i sh -c "cd '$BENCH_REPO' && cargo build --release" >"$log" 2>&1
    else
        (cd "$BENCH_REPO" && cargo build --release) >"$log" 2>&1
    fi || {
        tail -n 30 "$log" >&2
        rm -f "$log"
        e2e_die "cargo build --release failed"
    }
    rm -f "$log"
    NTA_BIN="$BENCH_REPO/target/release/nta7516-milter"
    BUILD_NOTE="cargo build --release"
}

# ---------------------------------------------------------------------------------------
# The parts

BE="" BQ=""
postfix_setup() {
    local bd v
    bd=$(pf_dir bench) BE=$(pf_etc bench) BQ="$(pf_dir bench)/queue"
    mkdir -p "$bd"/{etc,queue,data,mail}
    chown postfix "$bd/data"
    : >"$BE/main.cf"
    : >"$BE/master.cf"
    pf_render "$PF_CONF/main-base.cf.in" "$BE/main.cf" bench "$ADDR" bench.sender.bench.test
    pf_render "$PF_CONF/master-base.cf.in" "$BE/master.cf" bench "$ADDR" bench.sender.bench.test
    printf 'lmtp      unix  -       -       n       -       -       lmtp\n' >>"$BE/master.cf"
    : >"$BE/transport"
    for v in dovecot portal-sqlite portal-pg; do
        printf '%s lmtp:inet:[%s]:%s\n' "$(domain_of "$v")" "$ADDR" "$(port_of "$v")" >>"$BE/transport"
    done
    cat >>"$BE/main.cf" <<EOF
# --- role: bench (bench/portal-intake.sh): relay the test domains to their LMTP servers
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relay_domains = dovecot.bench.test, sqlite.bench.test, pg.bench.test
transport_maps = texthash:$BE/transport
smtpd_tls_security_level = none
lmtp_tls_security_level = none
EOF
}

dovecot_setup() {
    local d="$LAB/dovecot"
    mkdir -p "$d/run" "$d/state" "$d/mail"
    chown 65534:65534 "$d/mail"
    cat >"$d/dovecot.conf" <<EOF
# bench/portal-intake.sh: Dovecot as an LMTP-only maildir server
base_dir = $d/run
state_dir = $d/state
log_path = $LAB/log/dovecot.log
protocols = lmtp
ssl = no
listen = $ADDR
mail_location = maildir:$d/mail/%d/%n
mail_fsync = $DOVECOT_FSYNC
first_valid_uid = 1
passdb {
  driver = static
  args = nopassword
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=$d/mail/%d/%n allow_all_users=yes
}
service lmtp {
  inet_listener lmtp {
    address = $ADDR
    port = $(port_of dovecot)
  }
}
EOF
    lab_bg dovecot dovecot -F -c "$d/dovecot.conf"
    # (ip netns exec remounts /sys: move the process from outside; its workers fork later)
    cg_move dovecot "$(cat "$LAB/pids/dovecot.pid")"
}

pg_setup() {
    mkdir -p "$LAB/pg"
    chown postgres "$LAB/pg"
    run_in_lab runuser -u postgres -- "$PG_BIN/initdb" -A trust -U portal -D "$LAB/pg/data" \
        >"$LAB/log/initdb.out" 2>&1 || e2e_die "initdb failed: $(tail -n 5 "$LAB/log/initdb.out")"
    # the lab address is not the 127.0.0.1 that initdb's trust lines name
    printf 'host all portal %s/32 trust\n' "$ADDR" >>"$LAB/pg/data/pg_hba.conf"
    "${CGX[@]}" "$(cgdir pg)" ip netns exec "$NETNS" runuser -u postgres -- "$PG_BIN/pg_ctl" -w -t 60 \
        -o "-p 5432 -c listen_addresses=$ADDR -k $LAB/pg" -l "$LAB/pg/postgres.log" -D "$LAB/pg/data" start \
        >"$LAB/log/pg_ctl.out" 2>&1 || e2e_die "PostgreSQL does not start: $(tail -n 5 "$LAB/pg/postgres.log" "$LAB/log/pg_ctl.out" 2>&1)"
}

# portal_setup NAME STORE LMTP_PORT HTTP_PORT
portal_setup() {
    local d="$LAB/$1" SUBMIT_LINE="sendmail = \"$LAB/discard-sendmail\""
    [ "$PORTAL_SUBMIT" = sendmail ] || SUBMIT_LINE="submit = \"inet:$SINK\""
    mkdir -p "$d"
    "$NTA_BIN" portal keygen --out "$d/portal.key" >/dev/null
    head -c 32 /dev/urandom >"$d/portal-mail.key"
    printf 'bench-token\n' >"$d/sms.token"
    # the portal signs its own notifications (an own domain needs a key)
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/dkim.pem" 2>/dev/null
    chmod 600 "$d/portal-mail.key" "$d/sms.token" "$d/dkim.pem"
    cat >"$d/portal.toml" <<EOF
[domains]
own = ["sender.bench.test"]

[portal]
listen = "inet:$ADDR:$4"
public_url = "http://$ADDR:$4"
lmtp = "inet:$ADDR:$3"
store = "$2"
key_file = "$d/portal.key"
from = "portaal@sender.bench.test"
audit_file = "$d/audit.log"
mail_key = "$d/portal-mail.key"
$SUBMIT_LINE

[[dkim]]
domain = "sender.bench.test"
selector = "bench"
key = "$d/dkim.pem"

[portal.sms]
provider = "webhook"
url = "http://$ADDR:9/sms"
token_file = "$d/sms.token"
EOF
    "$NTA_BIN" check-config "$d/portal.toml" >"$LAB/log/$1-check.out" 2>&1 ||
        e2e_die "the $1 configuration is refused: $(cat "$LAB/log/$1-check.out")"
    lab_bg "$1" "$NTA_BIN" portal --config "$d/portal.toml"
    cg_move portal "$(cat "$LAB/pids/$1.pid")"
}

lmtp_up() { ip netns exec "$NETNS" timeout 2 bash -c "exec 3<>/dev/tcp/$ADDR/$1 && head -c 3 <&3 | grep -q 220" 2>/dev/null; }

# ---------------------------------------------------------------------------------------
# Measuring

# sent VARIANT : lmtp deliveries to VARIANT's server so far
sent() { grep -c "relay=$ADDR\[$ADDR\]:$(port_of "$1"), .*status=sent" "$(pf_log bench)" 2>/dev/null || true; }
queue_len() { run_in_lab postqueue -c "$BE" -j 2>/dev/null | grep -c . || true; }

# send VARIANT COUNT : smtp-source COUNT messages to VARIANT's domain; prints its seconds
send() {
    "${CGX[@]}" "$(cgdir load)" ip netns exec "$NETNS" timeout 600 \
        smtp-source -s "$SESSIONS" -l "$SIZE" -m "$2" -N -S "$SUBJECT" -f "$FROM" \
        -t "bench@$(domain_of "$1")" "$ADDR:25" >>"$LAB/log/smtp-source.out" 2>&1
}

# drain VARIANT TARGET : wait (bounded) until TARGET deliveries are logged and the queue is empty
drain() {
    local i
    for ((i = 0; i < DRAIN_TRIES; i++)); do
        if [ "$(sent "$1")" -ge "$2" ] && [ "$(queue_len)" -eq 0 ]; then return 0; fi
        sleep 0.1
    done
    return 1
}

PROBLEMS=()
RESULTS="" # lines: variant round accept_s e2e_s cpu_postfix cpu_receiver cpu_all
# phase VARIANT ROUND
phase() {
    local v=$1 before s0 s1 t0 t1 ta rg c
    before=$(sent "$v")
    s0=$(snap)
    t0=$(date +%s%N)
    send "$v" "$N" || PROBLEMS+=("$v round $2: smtp-source failed (see log/smtp-source.out)")
    ta=$(date +%s%N)
    drain "$v" $((before + N)) || PROBLEMS+=("$v round $2: $(($(sent "$v") - before)) of $N delivered, queue $(queue_len) after 600 s")
    t1=$(date +%s%N)
    s1=$(snap)
    case "$v" in dovecot) rg=dovecot ;; portal-sqlite) rg=portal ;; portal-pg) rg="portal pg" ;; esac
    c=$(awk -v a="$s0" -v b="$s1" -v rg="$rg" -v n="$N" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        # fields: t all postfix dovecot portal pg load ...
        idx["postfix"] = 3; idx["dovecot"] = 4; idx["portal"] = 5; idx["pg"] = 6
        r = 0; k = split(rg, g, " "); for (i = 1; i <= k; i++) r += y[idx[g[i]]] - x[idx[g[i]]]
        printf "%.2f %.2f %.2f", (y[3] - x[3]) / 1e6 / n, r / 1e6 / n, (y[2] - x[2]) / 1e6 / n }')
    RESULTS+="$v $2 $(awk -v a="$t0" -v b="$ta" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $c"$'\n'
    blog "$v round $2: $(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.0f msg/s", n / ((b - a) / 1e9) }') end to end (CPU ms/msg postfix/receiver/all: $c)"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

summary() {
    local v rates med accept cpu
    printf '## bench/portal-intake.sh, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf '%s messages of %s bytes per round, %s sessions, %s rounds, %s warm-up per variant; %s; %s; Dovecot mail_fsync = %s; the portals submit their own mail by %s.\n\n' \
        "$N" "$SIZE" "$SESSIONS" "$ROUNDS" "$WARMUP" "$(postconf -c "$BE" -h mail_version 2>/dev/null | sed 's/^/Postfix /')" \
        "$(dovecot --version 2>/dev/null | sed 's/^/Dovecot /; s/ (.*//')" "$DOVECOT_FSYNC" "$PORTAL_SUBMIT"
    printf '| Variant | Delivered msg/s (rounds) | **Delivered msg/s (median)** | Accepted msg/s (median) | CPU ms/msg: Postfix / receiver / all (mean) |\n|---|---|---|---|---|\n'
    for v in "${VARIANTS[@]}"; do
        rates=$(awk -v v="$v" -v n="$N" '$1 == v { printf "%s%.0f", s, n / $4; s = ", " }' <<<"$RESULTS")
        med=$(awk -v v="$v" -v n="$N" '$1 == v { printf "%.1f\n", n / $4 }' <<<"$RESULTS" | median)
        accept=$(awk -v v="$v" -v n="$N" '$1 == v { printf "%.1f\n", n / $3 }' <<<"$RESULTS" | median)
        cpu=$(awk -v v="$v" '$1 == v { p += $5; r += $6; a += $7; k++ } END { if (k) printf "%.2f / %.2f / %.2f", p / k, r / k, a / k }' <<<"$RESULTS")
        printf '| %s | %s | **%.0f** | %.0f | %s |\n' "$v" "$rates" "$med" "$accept" "$cpu"
        eval "MED_${v//-/_}=$med"
    done
    printf '\n'
    for v in portal-sqlite portal-pg; do
        has_variant "$v" && has_variant dovecot || continue
        local m="MED_${v//-/_}"
        awk -v a="${!m}" -v b="$MED_dovecot" -v v="$v" 'BEGIN { r = a / b; printf "- %s / dovecot: **%.2f×** (target ≥ 0.8×: %s)\n", v, r, (r >= 0.8 ? "met" : "MISSED") }'
    done
    printf '\nEvidence after the rounds:\n'
    printf '%s\n' "${EVIDENCE[@]}"
    if [ "${#PROBLEMS[@]}" -gt 0 ]; then
        printf '\n**Problems**:\n'
        printf -- '- %s\n' "${PROBLEMS[@]}"
    else
        printf '\nProblems: none (every message delivered, no deferral, queue empty after each phase).\n'
    fi
    printf '\nBuild: %s.\n' "$BUILD_NOTE"
}

# ---------------------------------------------------------------------------------------
# Main

bench_install
build_binary
LAB=$(mktemp -d "${TMPDIR:-/tmp}/nta7516-bench.XXXXXX")
chmod 755 "$LAB"
NETNS="nta7516-bench-$$"
export LAB NETNS
mkdir -p "$LAB"/log "$LAB"/pids
netns_up
cg_setup
printf '#!/bin/sh\n# the portal'"'"'s notifications and receipts: discarded (not intake)\nexec cat >/dev/null\n' >"$LAB/discard-sendmail"
chmod 755 "$LAB/discard-sendmail"

if [ "$PORTAL_SUBMIT" = smtp ]; then
    lab_bg sink smtp-sink -u nobody "$SINK" 256
    cg_move load "$(cat "$LAB/pids/sink.pid")"
    sink_up() { ip netns exec "$NETNS" timeout 2 bash -c "exec 3<>/dev/tcp/${SINK%:*}/${SINK#*:} && head -c 3 <&3 | grep -q 220" 2>/dev/null; }
    wait_for "smtp-sink answers on $SINK" 50 0.1 sink_up || e2e_die "smtp-sink does not answer (see $LAB/log/sink.out)"
fi
postfix_setup
out=$("${CGX[@]}" "$(cgdir postfix)" ip netns exec "$NETNS" script -qec "postfix -c $BE start" /dev/null 2>&1) ||
    e2e_die "postfix does not start: $out"
wait_for "postfix answers on $ADDR:25" 50 0.2 lmtp_up 25 || e2e_die "postfix does not answer"
! has_variant dovecot || dovecot_setup
if has_variant portal-pg; then
    pg_setup
    portal_setup portal-pg "postgres://portal@$ADDR:5432/postgres" "$(port_of portal-pg)" 7590
fi
! has_variant portal-sqlite || portal_setup portal-sqlite "sqlite:$LAB/portal-sqlite/portal.db" "$(port_of portal-sqlite)" 7580
for v in "${VARIANTS[@]}"; do
    wait_for "$v listens on $ADDR:$(port_of "$v")" 100 0.1 lmtp_up "$(port_of "$v")" ||
        e2e_die "$v does not answer LMTP (see $LAB/log)"
done

for v in "${VARIANTS[@]}"; do
    blog "warm-up: $WARMUP messages to $v"
    before=$(sent "$v")
    send "$v" "$WARMUP" || e2e_die "warm-up of $v: smtp-source failed"
    drain "$v" $((before + WARMUP)) || e2e_die "warm-up of $v did not drain (see $(pf_log bench))"
done

for ((r = 1; r <= ROUNDS; r++)); do
    order=("${VARIANTS[@]}")
    if ((r % 2 == 0)); then
        order=()
        for ((i = ${#VARIANTS[@]} - 1; i >= 0; i--)); do order+=("${VARIANTS[i]}"); done
    fi
    for v in "${order[@]}"; do phase "$v" "$r"; done
done

# Evidence: every message reached its store, and the portals' audit chains verify
TOTAL=$((WARMUP + ROUNDS * N))
EVIDENCE=()
if has_variant dovecot; then
    c=$(find "$LAB/dovecot/mail" -path '*/new/*' -type f | wc -l)
    EVIDENCE+=("- dovecot: $c maildir files for $TOTAL messages")
    [ "$c" -eq "$TOTAL" ] || PROBLEMS+=("dovecot: $c maildir files, expected $TOTAL")
fi
for v in portal-sqlite portal-pg; do
    has_variant "$v" || continue
    c=$(grep -c '"event_type":"portal_stored"' "$LAB/$v/audit.log" || true)
    if "$NTA_BIN" audit verify "$LAB/$v/audit.log" >"$LAB/log/$v-verify.out" 2>&1; then ok="verifies"; else
        ok="does NOT verify"
        PROBLEMS+=("$v: audit verify failed: $(tail -n 2 "$LAB/log/$v-verify.out")")
    fi
    # the notifications and receipts go out after the 250: give the last ones time
    for ((i = 0; i < 300; i++)); do
        sent_n=$(grep -c '"event_type":"portal_notified"' "$LAB/$v/audit.log" || true)
        sent_r=$(grep -c '"event_type":"portal_receipt_sent"' "$LAB/$v/audit.log" || true)
        [ "$sent_n" -lt "$TOTAL" ] || [ "$sent_r" -lt "$TOTAL" ] || break
        sleep 0.1
    done
    EVIDENCE+=("- $v: $c portal_stored, $sent_n portal_notified and $sent_r portal_receipt_sent audit events for $TOTAL messages (submitted by $PORTAL_SUBMIT); the audit chain $ok")
    [ "$c" -eq "$TOTAL" ] || PROBLEMS+=("$v: $c portal_stored events, expected $TOTAL")
    [ "$sent_n" -eq "$TOTAL" ] && [ "$sent_r" -eq "$TOTAL" ] ||
        PROBLEMS+=("$v: $sent_n notifications and $sent_r receipts submitted, expected $TOTAL each")
done
if grep -q "status=deferred\|status=bounced" "$(pf_log bench)"; then
    PROBLEMS+=("deferrals or bounces in the Postfix log: $(grep -c 'status=deferred\|status=bounced' "$(pf_log bench)")")
fi

summary | tee "${BENCH_SUMMARY:-/dev/null}"
