#!/usr/bin/env bash
# bench/postfix-throughput.sh: Postfix throughput with and without nta7516-milter, with
# OpenDKIM as the comparison, in ONE run on this machine (issue 3 item 9).
#
#     sudo bench/postfix-throughput.sh
#
# Method: one Postfix per variant, smtp-source as the client, medians of rounds. Everything runs in a private network namespace with
# only loopback (tests/e2e/lib.sh: Knot + Unbound serve the DNSSEC-signed lab.test zones).
# One Postfix instance ("bench", 127.0.10.1) has one smtpd listener per variant; the
# listeners differ only in smtpd_milters:
#     10030 bare       no milter
#     10031 opendkim   OpenDKIM 2.11 (Debian 12), RSA-2048 signing, unix socket
#     10032 nta-unix   nta7516-milter, milter and map server on unix sockets (the
#                      postfix/README.md variant, relative names under the queue directory)
#     10033 nta-inet   nta7516-milter, milter and map server on inet:127.0.10.1:7516/7517
#                      (the shipped default, loopback TCP)
#     10034 null       examples/bench_null.rs: a milter that holds the same conversation
#                      but changes nothing, and a route map with a constant answer (unix
#                      sockets): what Postfix itself spends on "a milter plus a route
#                      map", the floor for any design of that shape
# The route socketmap (transport_maps) is a main.cf setting (it is used by trivial-rewrite,
# which serves smtpd's RCPT-time lookup and the queue manager's delivery-time lookup), so
# it is switched per phase with postconf + `postfix reload`: empty for bare and opendkim,
# the unix or inet map server for the two nta phases. Every phase starts with a reload.
#
# Load: smtp-source -s SESSIONS -l SIZE -m N -N (unique recipient per message), one new
# connection per message, recipient <n>bench@nta.lab.test (an NTA 7516 compliant lab domain:
# the map server answers "OK nta-dane:"), sender sender@sender.lab.test (the daemon's own
# domain, DKIM key e2e._domainkey.sender.lab.test).
# Next hop: smtp-sink on 127.0.10.25:25 (the MX of nta.lab.test), WITHOUT TLS: smtp-sink has
# no STARTTLS, so delivery TLS is off for every variant (see bench/README.md for what each
# number includes and excludes).
#
# Environment (all optional):
#     BENCH_MESSAGES=2000   messages per measured phase     BENCH_SESSIONS=20
#     BENCH_SIZE=10240      body bytes (smtp-source -l)      BENCH_ROUNDS=3
#     BENCH_WARMUP=200      unmeasured messages per phase    BENCH_LATENCY=200
#     BENCH_MAP_LOOKUPS=5000  socketmap lookups per map-server measurement
#     BENCH_VARIANTS="bare opendkim null nta-unix nta-inet"
#     NTA_BIN=path          use this binary instead of `cargo build --release`
#     NULL_BIN=path         the bench_null example (default: examples/bench_null next to NTA_BIN)
#     BENCH_KEEP=1          keep the lab directory (logs) after the run
#     BENCH_SUMMARY=file    also write the final markdown summary to this file
#     BENCH_PERF=1          profile round 1 with `perf record -a` (CPU per process name and
#                           the daemon's hottest functions; adds perf's own overhead)
#
# Bounded everywhere (timeouts on every client, bounded polling); everything started here
# is stopped and removed on exit (trap): Postfix, the daemons, OpenDKIM, smtp-sink, Knot,
# Unbound, the namespace, the cgroups and the lab directory.

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
WARMUP=${BENCH_WARMUP:-200}
LAT_N=${BENCH_LATENCY:-200}
MAP_N=${BENCH_MAP_LOOKUPS:-5000}
read -r -a VARIANTS <<<"${BENCH_VARIANTS:-bare opendkim null nta-unix nta-inet}"
PERF=${BENCH_PERF:-0}
PERF_PID=""
[ "${BENCH_KEEP:-0}" = 1 ] && export NTA_E2E_KEEP=1

BENCH_ADDR=127.0.10.1
SINK_ADDR=127.0.10.25
FROM=sender@sender.lab.test
RCPT_DOMAIN=nta.lab.test
DRAIN_TRIES=2400 # x 0.05 s = 120 s per drain
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

port_of() {
    case "$1" in
    bare) echo 10030 ;; opendkim) echo 10031 ;; nta-unix) echo 10032 ;; nta-inet) echo 10033 ;; null) echo 10034 ;;
    *) e2e_die "unknown variant $1" ;;
    esac
}

blog() { printf '[bench] %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || {
    echo "bench/postfix-throughput.sh: run as root (sudo): it creates a network namespace" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------
# Packages: what the lab parts used here need, plus OpenDKIM (only missing ones installed)
BENCH_PKGS=(iproute2 openssl procps util-linux coreutils knot knot-dnssecutils unbound
    bind9-dnsutils postfix python3 python3-dkim opendkim opendkim-tools)

# ---------------------------------------------------------------------------------------
# CPU accounting (bench/lib-bench.sh): one child cgroup per component
CG_GROUPS=(postfix nta opendkim load dns)
# shellcheck source-path=SCRIPTDIR source=lib-bench.sh
. "$BENCH_DIR/lib-bench.sh"

# ---------------------------------------------------------------------------------------
# Cleanup

bench_cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    perf_stop
    if [ -n "${LAB:-}" ]; then
        pf_stop bench
        lab_down
    fi
    cg_teardown
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'blog interrupted; exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# Build

build_binary() {
    BUILD_NOTE="binary from NTA_BIN (${NTA_BIN:-}, built $(date -u -r "${NTA_BIN:-/}" '+%H:%M UTC' 2>/dev/null)), not built by this run"
    if [ -n "${NTA_BIN:-}" ]; then
        [ -x "$NTA_BIN" ] || e2e_die "NTA_BIN=$NTA_BIN is not executable"
        NULL_BIN=${NULL_BIN:-$(dirname "$NTA_BIN")/examples/bench_null}
        [ -x "$NULL_BIN" ] || ! has_variant null ||
            e2e_die "no $NULL_BIN: build it with 'cargo build --release --example bench_null' (or pass NULL_BIN, or leave 'null' out of BENCH_VARIANTS)"
        return 0
    fi
    local cargo t0 t1 log
    cargo=$(command -v cargo || true)
    [ -n "$cargo" ] || [ ! -x "${HOME:-/root}/.cargo/bin/cargo" ] || cargo="${HOME:-/root}/.cargo/bin/cargo"
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        # build as the invoking user (keeps target/ theirs), with their login PATH
        cargo="sudo -u $SUDO_USER -i"
    fi
    [ -n "$cargo" ] || e2e_die "cargo not found: build with 'cargo build --release' and pass NTA_BIN=target/release/nta7516-milter"
    log=$(mktemp "${TMPDIR:-/tmp}/nta7516-bench-build.XXXXXX")
    blog "cargo build --release ..."
    t0=$(date +%s%N)
    if [[ "$cargo" == sudo* ]]; then
        $cargo sh -c "cd '$BENCH_REPO' && cargo build --release && cargo build --release --example bench_null" >"$log" 2>&1 || {
            tail -n 30 "$log" >&2
            rm -f "$log"
            e2e_die "cargo build --release failed"
        }
    else
        (cd "$BENCH_REPO" && "$cargo" build --release && "$cargo" build --release --example bench_null) >"$log" 2>&1 || {
            tail -n 30 "$log" >&2
            rm -f "$log"
            e2e_die "cargo build --release failed"
        }
    fi
    t1=$(date +%s%N)
    BUILD_NOTE="cargo build --release: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", (b - a) / 1e9 }') ($(grep -E 'Finished|Compiling nta7516' "$log" | tail -n 1 | sed 's/^ *//'))"
    rm -f "$log"
    NTA_BIN="$BENCH_REPO/target/release/nta7516-milter"
    NULL_BIN="$BENCH_REPO/target/release/examples/bench_null"
    [ -x "$NTA_BIN" ] || e2e_die "no binary at $NTA_BIN after the build"
}

# has_variant NAME : NAME is in BENCH_VARIANTS
has_variant() { [[ " ${VARIANTS[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------
# The bench Postfix instance

BD="" BE="" BQ=""
SHIPPED_MILTERS=$(sed -n 's/^smtpd_milters = //p' "$PF_SHIPPED/main.cf")
SHIPPED_ROUTE=$(sed -n 's/^transport_maps = //p' "$PF_SHIPPED/main.cf")
if [ -z "$SHIPPED_MILTERS" ] || [ -z "$SHIPPED_ROUTE" ]; then
    e2e_die "could not read smtpd_milters / transport_maps from $PF_SHIPPED/main.cf"
fi

bench_pf_setup() {
    BD=$(pf_dir bench) BE=$(pf_etc bench) BQ="$(pf_dir bench)/queue"
    rm -rf "$BD"
    mkdir -p "$BD"/{etc,queue,data,mail}
    chown postfix "$BD/data"
    chown 65534:65534 "$BD/mail"
    : >"$BE/main.cf"
    : >"$BE/master.cf"
    pf_render "$PF_CONF/main-base.cf.in" "$BE/main.cf" bench "$BENCH_ADDR" bench.sender.lab.test
    pf_render "$PF_CONF/master-base.cf.in" "$BE/master.cf" bench "$BENCH_ADDR" bench.sender.lab.test
    cat >>"$BE/main.cf" <<EOF
# --- role: bench (bench/postfix-throughput.sh)
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# DSNs to the bench's sender would land here (a failed phase shows up as files)
virtual_mailbox_domains = sender.lab.test
smtpd_tls_security_level = none

# --- the shipped postfix/main.cf (bench overrides follow via postconf -e)
EOF
    sed -e "s|/etc/postfix/nta7516-milter_header_checks|$BE/nta7516-milter_header_checks|g" \
        "$PF_SHIPPED/main.cf" >>"$BE/main.cf"
    cp "$PF_SHIPPED/nta7516-milter_header_checks" "$BE/nta7516-milter_header_checks"
    # the shipped master.cf; the one bench change: nta-dane delivers WITHOUT TLS
    # (smtp-sink has no STARTTLS; dane-only would defer everything)
    {
        printf '\n# --- the shipped postfix/master.cf; bench change: nta-dane TLS level none (smtp-sink has no TLS)\n'
        sed -e '/^nta-dane /,/^[^ ]/ s/-o smtp_tls_security_level=dane-only/-o smtp_tls_security_level=none/' \
            "$PF_SHIPPED/master.cf"
        cat <<EOF

# --- bench listeners: they differ only in smtpd_milters
$BENCH_ADDR:10030 inet n - n - - smtpd -o syslog_name=postfix/bare -o smtpd_milters=
$BENCH_ADDR:10031 inet n - n - - smtpd -o syslog_name=postfix/opendkim -o smtpd_milters=\$bench_milters_opendkim
$BENCH_ADDR:10032 inet n - n - - smtpd -o syslog_name=postfix/nta-unix -o smtpd_milters=\$bench_milters_nta_unix
$BENCH_ADDR:10033 inet n - n - - smtpd -o syslog_name=postfix/nta-inet -o smtpd_milters=\$bench_milters_nta_inet
$BENCH_ADDR:10034 inet n - n - - smtpd -o syslog_name=postfix/null -o smtpd_milters=\$bench_milters_null
EOF
    } >>"$BE/master.cf"
    grep -q 'smtp_tls_security_level=none' "$BE/master.cf" ||
        e2e_die "could not turn off TLS for nta-dane in the bench master.cf"
    # milter settings: the shipped value, only the socket differs; the global
    # smtpd_milters is empty (each listener sets its own)
    postconf -c "$BE" -e \
        "bench_milters_opendkim = ${SHIPPED_MILTERS//inet:127.0.0.1:7516/unix:$LAB/opendkim/opendkim.sock}" \
        "bench_milters_nta_unix = ${SHIPPED_MILTERS//inet:127.0.0.1:7516/unix:nta7516-milter/milter.sock}" \
        "bench_milters_nta_inet = ${SHIPPED_MILTERS//inet:127.0.0.1:7516/inet:$BENCH_ADDR:7516}" \
        "bench_milters_null = ${SHIPPED_MILTERS//inet:127.0.0.1:7516/unix:nta7516-milter/null-milter.sock}" \
        "smtpd_milters =" \
        "non_smtpd_milters =" \
        "transport_maps =" \
        "smtp_tls_policy_maps =" \
        "smtp_tls_security_level = none"
    install -d -m 750 -g postfix "$BQ/nta7516-milter"
}

# bench_maps VARIANT : main.cf's transport_maps for the phase (route map of the matching
# daemon; none for bare/opendkim)
bench_maps() {
    local route=""
    case "$1" in
    nta-unix) route=${SHIPPED_ROUTE//inet:127.0.0.1:7517/unix:nta7516-milter/map.sock} ;;
    nta-inet) route=${SHIPPED_ROUTE//inet:127.0.0.1:7517/inet:$BENCH_ADDR:7517} ;;
    null) route=${SHIPPED_ROUTE//inet:127.0.0.1:7517/unix:nta7516-milter/null-map.sock} ;;
    esac
    postconf -c "$BE" -e "transport_maps = $route"
}

bench_smtp_up() {
    ip netns exec "$NETNS" timeout 3 bash -c "exec 3<>/dev/tcp/$BENCH_ADDR/$1 && head -c 3 <&3 | grep -q 220" 2>/dev/null
}

bench_pf_start() {
    local out v
    # run_in_lab_resolv, inside the "postfix" cgroup (joined before entering the namespace:
    # ip netns exec remounts /sys, so the cgroup files are not visible inside)
    # shellcheck disable=SC2016 # $0 and $@ belong to the inner sh
    out=$("${CGX[@]}" "$(cgdir postfix)" ip netns exec "$NETNS" unshare -m sh -c \
        'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$LAB/resolv.conf" \
        script -qec "postfix -c $BE start" /dev/null 2>&1) ||
        e2e_die "postfix bench does not start: $out"
    for v in "${VARIANTS[@]}"; do
        wait_for "bench listener $v" 50 0.2 bench_smtp_up "$(port_of "$v")" ||
            e2e_die "bench listener $v does not answer (see $(pf_log bench))"
    done
}

# bench_reload VARIANT : maps for VARIANT, postfix reload, wait for the listener
bench_reload() {
    bench_maps "$1"
    run_in_lab postfix -c "$BE" reload >/dev/null 2>&1 || e2e_die "postfix reload failed"
    sleep 1
    wait_for "bench listener $1 after reload" 50 0.2 bench_smtp_up "$(port_of "$1")" ||
        e2e_die "bench listener $1 does not answer after reload"
}

queue_empty() {
    [ -z "$(find "$BQ/incoming" "$BQ/active" "$BQ/deferred" "$BQ/hold" "$BQ/maildrop" -type f -print -quit 2>/dev/null)" ]
}

# wait_drain : until the queue is empty (bounded); exit 1 on timeout
wait_drain() {
    local i
    for ((i = 0; i < DRAIN_TRIES; i++)); do
        queue_empty && return 0
        sleep 0.05
    done
    return 1
}

# source_run PORT COUNT RCPT [EXTRA...] : smtp-source into PORT (bounded)
source_run() {
    local port=$1 count=$2 rcpt=$3
    shift 3
    "${CGX[@]}" "$(cgdir load)" ip netns exec "$NETNS" timeout 300 \
        smtp-source -s "$SESSIONS" -l "$SIZE" -m "$count" -f "$FROM" -t "$rcpt" \
        -M client.bench.lab.test "$@" "$BENCH_ADDR:$port"
}

# ---------------------------------------------------------------------------------------
# smtp-sink (the next hop), OpenDKIM, the two nta7516-milter daemons

sink_start() { # [DUMP_TEMPLATE]
    local dumpopt=()
    [ -z "${1:-}" ] || dumpopt=(-d "$1")
    lab_bg sink smtp-sink -u postfix -h sink.lab.test "${dumpopt[@]}" -m 1024 "$SINK_ADDR:25" 1024
    cg_move load "$(cat "$LAB/pids/sink.pid")"
    wait_for "smtp-sink on $SINK_ADDR:25" 50 0.1 bench_smtp_up_sink ||
        e2e_die "smtp-sink does not answer (see $LAB/log/sink.out)"
}
bench_smtp_up_sink() {
    ip netns exec "$NETNS" timeout 3 bash -c "exec 3<>/dev/tcp/$SINK_ADDR/25 && head -c 3 <&3 | grep -q 220" 2>/dev/null
}

opendkim_start() {
    mkdir -p "$LAB/opendkim"
    cat >"$LAB/opendkim/opendkim.conf" <<EOF
# OpenDKIM for bench/postfix-throughput.sh: sign only, RSA-2048, unix socket
Syslog                  no
Mode                    s
Domain                  sender.lab.test
Selector                $PF_DKIM_SELECTOR
KeyFile                 $LAB/dkim/sender.pem
Socket                  local:$LAB/opendkim/opendkim.sock
UMask                   000
# Postfix passes the SMTP client's address (127.0.10.1): sign for the whole lab range
InternalHosts           127.0.0.0/8
# the same canonicalization as nta7516-milter
Canonicalization        relaxed/relaxed
SignatureAlgorithm      rsa-sha256
# the key is in a temporary tree that OpenDKIM's ownership checks would refuse
RequireSafeKeys         false
PidFile                 $LAB/opendkim/opendkim.pid
EOF
    lab_bg opendkim opendkim -f -x "$LAB/opendkim/opendkim.conf"
    cg_move opendkim "$(cat "$LAB/pids/opendkim.pid")"
    wait_for "OpenDKIM socket" 50 0.1 test -S "$LAB/opendkim/opendkim.sock" ||
        e2e_die "OpenDKIM does not listen (see $LAB/log/opendkim.out)"
}

# nta_config FILE MILTER MAP NAME
nta_config() {
    mkdir -p "$LAB/audit"
    nta_write_config "$1" "$E2E_RESOLVER_ADDR" "$(
        cat <<EOF
[server]
milter = "$2"
map = "$3"
socket_group = "postfix"

[domains]
own = ["sender.lab.test"]

[outbound]
networks = ["$BENCH_ADDR/32", "127.0.0.1/32"]

[[dkim]]
domain = "sender.lab.test"
selector = "$PF_DKIM_SELECTOR"
key = "$LAB/dkim/sender.pem"

[audit]
file = "$LAB/audit/$4.log"
EOF
    )"
    "$NTA_BIN" check-config "$1" >"$LAB/log/check-config-$4.out" 2>&1 ||
        e2e_die "daemon config $1 does not check: $(cat "$LAB/log/check-config-$4.out")"
}

nta_inet_up() {
    ip netns exec "$NETNS" timeout 2 bash -c "exec 3<>/dev/tcp/$BENCH_ADDR/7516 && exec 4<>/dev/tcp/$BENCH_ADDR/7517" 2>/dev/null
}

nta_start() {
    nta_config "$LAB/nta-unix.toml" "unix:$BQ/nta7516-milter/milter.sock" "unix:$BQ/nta7516-milter/map.sock" nta-unix
    nta_config "$LAB/nta-inet.toml" "inet:$BENCH_ADDR:7516" "inet:$BENCH_ADDR:7517" nta-inet
    lab_bg nta-unix "$NTA_BIN" serve --config "$LAB/nta-unix.toml"
    cg_move nta "$(cat "$LAB/pids/nta-unix.pid")"
    mkdir -p "$LAB/perf"
    cp "$LAB/pids/nta-unix.pid" "$LAB/perf/nta-unix.pid"
    lab_bg nta-inet "$NTA_BIN" serve --config "$LAB/nta-inet.toml"
    cg_move nta "$(cat "$LAB/pids/nta-inet.pid")"
    wait_for "nta-unix sockets" 100 0.1 sh -c "test -S '$BQ/nta7516-milter/milter.sock' && test -S '$BQ/nta7516-milter/map.sock'" ||
        e2e_die "nta-unix does not listen (see $LAB/log/nta-unix.out)"
    wait_for "nta-inet sockets" 100 0.1 nta_inet_up ||
        e2e_die "nta-inet does not listen (see $LAB/log/nta-inet.out)"
}

# null_start : examples/bench_null on unix sockets next to the daemon's, in the "nta"
# cgroup (its CPU is the "milter" column of the null variant)
null_start() {
    has_variant null || return 0
    lab_bg null "$NULL_BIN" "$BQ/nta7516-milter/null-milter.sock" "$BQ/nta7516-milter/null-map.sock" "OK nta-dane:$RCPT_DOMAIN"
    cg_move nta "$(cat "$LAB/pids/null.pid")"
    wait_for "null milter sockets" 100 0.1 sh -c "test -S '$BQ/nta7516-milter/null-milter.sock' && test -S '$BQ/nta7516-milter/null-map.sock'" ||
        e2e_die "bench_null does not listen (see $LAB/log/null.out)"
}

# ---------------------------------------------------------------------------------------
# Content check: one message per variant through a dumping sink

# strip_sink_headers FILE : the message as the bench Postfix sent it (smtp-sink's
# X-Client-*/X-Helo/X-Mail/X-Rcpt lines and its 3-line Received header removed), CRLF
strip_sink_headers() {
    awk 'BEGIN { st = 0 }
        st == 0 && /^X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args):/ { next }
        st == 0 && /^Received:/ { st = 1; next }
        st == 1 && /^[ \t]/ { next }
        { st = 2; printf "%s\r\n", $0 }' "$1"
}

CHECK_NOTES=()
content_check() {
    local v f dump="$LAB/sinkdump" sig foot verdict
    blog "content check: one ${SIZE}-byte message per variant through a dumping smtp-sink"
    mkdir -p "$dump"
    chown postfix "$dump"
    sink_start "$dump/msg."
    for v in "${VARIANTS[@]}"; do
        bench_reload "$v"
        SESSIONS=1 source_run "$(port_of "$v")" 1 "check-$v@$RCPT_DOMAIN" >"$LAB/log/check-$v.out" 2>&1 ||
            e2e_die "content check: $v refused the message: $(tail -n 3 "$LAB/log/check-$v.out")"
        wait_drain || e2e_die "content check: the $v message was not delivered (see $(pf_log bench))"
    done
    lab_stop sink
    for v in "${VARIANTS[@]}"; do
        f=$(grep -l "^X-Rcpt-Args: <check-$v@$RCPT_DOMAIN>" "$dump"/msg.* 2>/dev/null | head -n 1 || true)
        if [ -z "$f" ]; then
            CHECK_NOTES+=("$v: FAILED, no message at the sink")
            continue
        fi
        strip_sink_headers "$f" >"$LAB/out/check-$v.eml"
        sig=$(grep -c '^DKIM-Signature:' "$LAB/out/check-$v.eml" || true)
        foot=$(grep -c 'beveiligd verzonden volgens NTA 7516' "$LAB/out/check-$v.eml" || true)
        verdict=$(run_in_lab_resolv timeout 20 dkimverify <"$LAB/out/check-$v.eml" 2>&1 | tail -n 1 || true)
        case "$v" in
        bare)
            if [ "$sig" = 0 ] && [ "$foot" = 0 ]; then
                CHECK_NOTES+=("bare: ok (no DKIM-Signature, no footer)")
            else CHECK_NOTES+=("bare: FAILED (DKIM-Signature $sig, footer $foot)"); fi
            ;;
        opendkim)
            if [ "$sig" = 1 ] && [ "$verdict" = "signature ok" ]; then
                CHECK_NOTES+=("opendkim: ok (DKIM-Signature $(grep -o 'd=[^;]*' "$LAB/out/check-$v.eml" | head -n 1), dkimverify: $verdict)")
            else CHECK_NOTES+=("opendkim: FAILED (DKIM-Signature $sig, dkimverify: $verdict)"); fi
            ;;
        null)
            if [ "$sig" = 0 ] && [ "$foot" = 0 ] && grep "to=<check-$v@" "$(pf_log bench)" | grep -q 'postfix/nta-dane/smtp.*status=sent'; then
                CHECK_NOTES+=("null: ok (unchanged: no DKIM-Signature, no footer; route: via postfix/nta-dane/smtp)")
            else CHECK_NOTES+=("null: FAILED (DKIM-Signature $sig, footer $foot, or not delivered via nta-dane)"); fi
            ;;
        nta-*)
            if [ "$sig" = 1 ] && [ "$foot" -ge 1 ] && [ "$verdict" = "signature ok" ]; then
                CHECK_NOTES+=("$v: ok (footer added, DKIM-Signature $(grep -o 'd=[^;]*' "$LAB/out/check-$v.eml" | head -n 1), dkimverify: $verdict; route: $(grep -o 'relay=[^ ]*' <(grep "to=<check-$v@" "$(pf_log bench)" | grep status=sent) | head -n 1) via $(grep "to=<check-$v@" "$(pf_log bench)" | grep -o 'postfix/[a-z-]*/smtp' | head -n 1))")
            else CHECK_NOTES+=("$v: FAILED (DKIM-Signature $sig, footer $foot, dkimverify: $verdict)"); fi
            ;;
        esac
    done
    printf '  %s\n' "${CHECK_NOTES[@]}" >&2
    sink_start
}

# ---------------------------------------------------------------------------------------
# Optional profile (BENCH_PERF=1): perf record -a over a measured phase of round 1

perf_start() {
    [ "$PERF" = 1 ] || return 0
    command -v perf >/dev/null || {
        blog "BENCH_PERF=1 but perf is not installed (apt-get install linux-perf)"
        PERF=0
        return 0
    }
    mkdir -p "$LAB/perf"
    perf record -a -F 999 -o "$LAB/perf/$1.data" >"$LAB/log/perf-$1.out" 2>&1 &
    PERF_PID=$!
    sleep 1
}

perf_stop() {
    local i
    [ -n "${PERF_PID:-}" ] || return 0
    # perf installs its own SIGINT handler (record and stat write their results on it)
    kill -INT "$PERF_PID" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$PERF_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
}

# perf_report : CPU ms per message by process name (all processes on the machine, so
# other users' work shows up too), and the nta-unix daemon's hottest functions
perf_report() {
    [ "$PERF" = 1 ] && [ -d "$LAB/perf" ] || return 0
    local v f pid
    : >"$LAB/perf/comms.tsv"
    for v in "${VARIANTS[@]}"; do
        f="$LAB/perf/$v.data"
        [ -s "$f" ] || continue
        perf report -i "$f" --sort comm -n --stdio -q 2>/dev/null |
            awk -v v="$v" -v n="$N" 'NF >= 3 && $1 ~ /%$/ { c = $3; for (i = 4; i <= NF; i++) c = c " " $i; printf "%s\t%s\t%.3f\n", v, c, $2 * 1000 / 999 / n }' >>"$LAB/perf/comms.tsv"
    done
    {
        # shellcheck disable=SC2016 # literal backquotes (markdown code)
        printf '\nProfile of round 1 (`perf record -a -F 999` over acceptance + drain; CPU ms per message by process name, all processes on the machine):\n\n'
        awk -F'\t' -v vs="${VARIANTS[*]}" '
            { ms[$2, $1] = $3; if ($3 > top[$2]) top[$2] = $3 }
            END {
                nv = split(vs, V, " ");
                printf "| Process |"; for (i = 1; i <= nv; i++) printf " %s |", V[i]; print "";
                printf "|---|"; for (i = 1; i <= nv; i++) printf "---|"; print "";
                nc = 0; for (c in top) C[++nc] = c;
                for (i = 1; i <= nc; i++) for (j = i + 1; j <= nc; j++) if (top[C[j]] > top[C[i]]) { t = C[i]; C[i] = C[j]; C[j] = t }
                for (i = 1; i <= nc && i <= 16; i++) {
                    if (top[C[i]] < 0.02) break;
                    printf "| %s |", C[i]; for (k = 1; k <= nv; k++) printf " %.2f |", ms[C[i], V[k]]; print "";
                }
            }' "$LAB/perf/comms.tsv"
        f="$LAB/perf/nta-unix.data"
        pid=$(cat "$LAB/perf/nta-unix.pid" 2>/dev/null || true)
        if [ -s "$f" ] && [ -n "$pid" ]; then
            printf '\nnta-unix daemon (pid %s), hottest functions (self time, %% of the daemon'"'"'s samples):\n\n```\n' "$pid"
            perf report -i "$f" --pid "$pid" --percentage relative --sort dso,sym --stdio -q --percent-limit 1.5 2>/dev/null |
                sed -e 's/[[:space:]]*$//' -e '/^$/d' | head -n 30
            printf '```\n'
        fi
    } >>"$LAB/summary.md"
}

# ---------------------------------------------------------------------------------------
# Measurement

RESULTS=""

# phase VARIANT ROUND
phase() {
    local v=$1 r=$2 port s0 s1 t1 lat logoff sent bad problems="" rc=0 dsn0 dsn1
    port=$(port_of "$v")
    bench_reload "$v"
    # warm-up: smtpd/cleanup/trivial-rewrite/smtp processes, milter connections, caches
    source_run "$port" "$WARMUP" "warm-$v-$r@$RCPT_DOMAIN" -N >"$LAB/log/warm-$v-$r.out" 2>&1 ||
        e2e_die "$v round $r: warm-up refused: $(tail -n 3 "$LAB/log/warm-$v-$r.out")"
    wait_drain || e2e_die "$v round $r: the warm-up did not drain (see $(pf_log bench))"
    logoff=$(stat -c %s "$(pf_log bench)")
    dsn0=$(find "$BD/mail" -type f | wc -l)
    [ "$r" != 1 ] || perf_start "$v"
    s0=$(snap)
    source_run "$port" "$N" "bench@$RCPT_DOMAIN" -N >"$LAB/log/run-$v-$r.out" 2>&1 || rc=$?
    t1=$(date +%s%N)
    if [ "$rc" -ne 0 ]; then
        problems+="smtp-source exit $rc: $(tail -n 1 "$LAB/log/run-$v-$r.out" | tr '\t|' '  ');"
    fi
    if ! wait_drain; then
        problems+="queue not empty after 120 s;"
        run_in_lab postsuper -c "$BE" -d ALL >/dev/null 2>&1 || true
    fi
    s1=$(snap)
    perf_stop
    sleep 0.5 # postlogd catches up
    sent=$(tail -c +"$((logoff + 1))" "$(pf_log bench)" | grep -c 'status=sent' || true)
    bad=$(tail -c +"$((logoff + 1))" "$(pf_log bench)" | grep -Ec 'status=(deferred|bounced)|milter-reject|reject:' || true)
    dsn1=$(find "$BD/mail" -type f | wc -l)
    [ "$bad" = 0 ] || problems+="$bad deferred/bounced/rejected log lines;"
    [ "$dsn1" = "$dsn0" ] || problems+="$((dsn1 - dsn0)) DSNs;"
    [ "$sent" -ge "$N" ] || problems+="only $sent status=sent lines for $N messages (postlogd may drop lines);"
    # unloaded per-message latency: one connection, one message after the other
    lat=$("${CGX[@]}" "$(cgdir load)" ip netns exec "$NETNS" timeout 300 \
        "$PY" "$BENCH_DIR/bench_clients.py" latency "$BENCH_ADDR" "$port" "$LAT_N" "$SIZE" "$FROM" "lat-$v-$r-{n}@$RCPT_DOMAIN" 2>"$LAB/log/lat-$v-$r.err") ||
        {
            problems+="latency client failed: $(tail -n 1 "$LAB/log/lat-$v-$r.err");"
            lat="nan nan nan nan nan"
        }
    wait_drain || problems+="latency messages not drained;"
    # variant round n t0 t1 s0(10 fields) s1(10 fields) lat(5) problems
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$v" "$r" "$N" "$t1" "$s0" "$s1" "$lat" "${problems:-ok}" >>"$RESULTS"
    awk -F'\t' -v OFS=' ' 'END {
        split($5, a, " "); split($6, b, " ");
        acc = $3 / (($4 - a[1]) / 1e9); e2e = $3 / ((b[1] - a[1]) / 1e9);
        printf "[bench] %-9s round %s: accept %.0f msg/s, end-to-end %.0f msg/s, latency p50/p95/p99 %s ms; %s\n", $1, $2, acc, e2e, $7, $8
    }' "$RESULTS" >&2
}

map_bench() {
    local kind addr
    MAPROWS=()
    for kind in unix inet; do
        case "$kind" in
        unix) addr="unix:$BQ/nta7516-milter/map.sock" ;;
        inet) addr="inet:$BENCH_ADDR:7517" ;;
        esac
        local route tls
        route=$("${CGX[@]}" "$(cgdir load)" ip netns exec "$NETNS" timeout 120 "$PY" "$BENCH_DIR/bench_clients.py" \
            socketmap "$addr" "$MAP_N" route "map{n}@$RCPT_DOMAIN" 2>"$LAB/log/map-$kind-route.err" | tail -n 1 || true)
        tls=$("${CGX[@]}" "$(cgdir load)" ip netns exec "$NETNS" timeout 120 "$PY" "$BENCH_DIR/bench_clients.py" \
            socketmap "$addr" "$MAP_N" tls "$RCPT_DOMAIN" 2>"$LAB/log/map-$kind-tls.err" | tail -n 1 || true)
        [[ "$route" =~ ^[0-9]+\ [0-9]+\ [0-9]+\ [^\ ]+$ ]] || route="failed - - $(tail -n 1 "$LAB/log/map-$kind-route.err" | tr ' |' '__')"
        [[ "$tls" =~ ^[0-9]+\ [0-9]+\ [0-9]+\ [^\ ]+$ ]] || tls="failed - - $(tail -n 1 "$LAB/log/map-$kind-tls.err" | tr ' |' '__')"
        MAPROWS+=("$kind|$route|$tls")
    done
}

# ---------------------------------------------------------------------------------------
# Report

report() {
    local commit dirty
    commit=$(git -C "$BENCH_REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    dirty=$(git -C "$BENCH_REPO" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
    [ "$dirty" = 0 ] || commit+=" + uncommitted changes in src/Cargo ($dirty files)"
    {
        printf '## Postfix throughput: bare vs OpenDKIM vs nta7516-milter\n\n'
        printf -- '- Date: %s; host: %s, %s CPU(s) (%s), %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(hostname)" "$(nproc)" \
            "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(. /etc/os-release && echo "$PRETTY_NAME")"
        printf -- '- Software: Postfix %s, OpenDKIM %s, nta7516-milter %s (repository at %s); %s\n' \
            "$(postconf -d -h mail_version 2>/dev/null)" "$(dpkg-query -W -f='${Version}' opendkim 2>/dev/null)" \
            "$("$NTA_BIN" --version 2>/dev/null | awk '{ print $NF }')" "$commit" "$BUILD_NOTE"
        printf -- '- Load: smtp-source -s %s -l %s -m %s -N (new connection per message, 1 recipient), %s round(s), %s warm-up messages per phase; next hop smtp-sink on %s:25, no TLS\n' \
            "$SESSIONS" "$SIZE" "$N" "$ROUNDS" "$WARMUP" "$SINK_ADDR"
        printf -- '- Machine load: loadavg %s before, %s after; CPU used outside this benchmark (other users of the machine) before the run: %s\n' \
            "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)" "$FOREIGN_BEFORE"
        printf -- '- Content check (one message per variant, dumped at the sink): %s\n\n' "$(printf '%s; ' "${CHECK_NOTES[@]}" | sed 's/; $//')"
    } >"$LAB/summary.md"
    awk -F'\t' -v ncpu="$(nproc)" -v cg="${CG:+1}" '
    function mean(s, n) { return n ? s / n : 0 }
    # median of the values in list L (n entries, L[1..n])
    function median(L, n,    i, j, t, M) {
        for (i = 1; i <= n; i++) M[i] = L[i];
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (M[j] < M[i]) { t = M[i]; M[i] = M[j]; M[j] = t }
        return n % 2 ? M[(n + 1) / 2] : (M[n / 2] + M[n / 2 + 1]) / 2;
    }
    {
        v = $1; n = $3; split($5, a, " "); split($6, b, " "); split($7, l, " ");
        acc = n / (($4 - a[1]) / 1e9); e2e = n / ((b[1] - a[1]) / 1e9); el = (b[1] - a[1]) / 1e9;
        if (!(v in seen)) { seen[v] = 1; order[++nv] = v }
        accs[v] = accs[v] (accs[v] == "" ? "" : ", ") sprintf("%.0f", acc); accsum[v] += acc;
        e2es[v] = e2es[v] (e2es[v] == "" ? "" : ", ") sprintf("%.0f", e2e); e2esum[v] += e2e; cnt[v]++;
        AL[v, cnt[v]] = acc; EL[v, cnt[v]] = e2e;
        p50[v] += l[1]; p95[v] += l[2]; p99[v] += l[3];
        # cgroup ns per message: all postfix nta opendkim load dns
        for (i = 2; i <= 7; i++) cpu[v, i] += (b[i] - a[i]) / n / 1e6;
        # foreign CPU: machine busy (+steal) minus this benchmark, % of all CPUs
        busy = (b[8] - a[8] + b[9] - a[9]) * 10;  # jiffies -> ms (USER_HZ 100)
        ours = (b[2] - a[2]) / 1e6;
        tot = el * 1000 * ncpu;
        fgn[v] += (busy - ours) / tot * 100; bsy[v] += busy / tot * 100;
        if ($8 != "ok") probs[v] = probs[v] "round " $2 ": " $8 " ";
    }
    END {
        print "| Variant | Accept msg/s (rounds) | **Accept msg/s (median)** | End-to-end msg/s (rounds) | **End-to-end msg/s (median)** | Latency p50 / p95 / p99 ms (mean of rounds) | CPU ms/msg: all / Postfix / milter / smtp-source+sink / DNS (mean) | Machine busy % (other users %) |"
        print "|---|---|---|---|---|---|---|---|"
        for (k = 1; k <= nv; k++) {
            v = order[k]; c = cnt[v];
            delete LA; delete LE;
            for (i = 1; i <= c; i++) { LA[i] = AL[v, i]; LE[i] = EL[v, i] }
            A[v] = median(LA, c); E[v] = median(LE, c);
            mil = (v ~ /^nta/ || v == "null") ? cpu[v, 4] : (v == "opendkim" ? cpu[v, 5] : cpu[v, 4] + cpu[v, 5]);
            T[v] = cpu[v, 2] / c;
            if (cg) cpus = sprintf("%.2f / %.2f / %.2f / %.2f / %.2f", cpu[v, 2] / c, cpu[v, 3] / c, mil / c, cpu[v, 6] / c, cpu[v, 7] / c); else cpus = "n/a";
            if (cg) fg = sprintf("%.0f (%.0f)", bsy[v] / c, fgn[v] / c); else fg = sprintf("%.0f (n/a)", bsy[v] / c);
            printf "| %s | %s | **%.0f** | %s | **%.0f** | %.1f / %.1f / %.1f | %s | %s |\n", v, accs[v], A[v], e2es[v], E[v], p50[v] / c, p95[v] / c, p99[v] / c, cpus, fg;
        }
        print "";
        print "| Ratio (medians) | Acceptance | End-to-end | CPU cost (inverse ratio of CPU ms/msg, all) | Target (acceptance) |";
        print "|---|---|---|---|---|";
        for (k = 1; k <= nv; k++) {
            v = order[k]; if (v !~ /^nta/) continue;
            if ("bare" in A) printf "| %s / bare | %.2f× | %.2f× | %s | ≥ 0.8× (%s) |\n", v, A[v] / A["bare"], E[v] / E["bare"], (cg && T[v] ? sprintf("%.2f×", T["bare"] / T[v]) : "n/a"), (A[v] / A["bare"] >= 0.8 ? "met" : "MISSED");
            if ("opendkim" in A) printf "| %s / OpenDKIM | %.2f× | %.2f× | %s | ≥ 2× (%s) |\n", v, A[v] / A["opendkim"], E[v] / E["opendkim"], (cg && T[v] ? sprintf("%.2f×", T["opendkim"] / T[v]) : "n/a"), (A[v] / A["opendkim"] >= 2 ? "met" : "MISSED");
        }
        if (("bare" in A) && ("null" in A))
            printf "| floor of the design: null / bare | %.2f× | %.2f× | %s | (Postfix with a do-nothing milter and route map; nta / bare cannot exceed this) |\n", A["null"] / A["bare"], E["null"] / E["bare"], (cg && T["null"] ? sprintf("%.2f×", T["bare"] / T["null"]) : "n/a");
        if (("null" in A) && ("opendkim" in A))
            printf "| null / OpenDKIM | %.2f× | %.2f× | %s | (the most any milter with a route map can reach against OpenDKIM here) |\n", A["null"] / A["opendkim"], E["null"] / E["opendkim"], (cg && T["null"] ? sprintf("%.2f×", T["opendkim"] / T["null"]) : "n/a");
        for (k = 1; k <= nv; k++) {
            v = order[k]; if (v !~ /^nta/ || !("null" in A)) continue;
            printf "| %s / null | %.2f× | %.2f× | %s | (what nta7516-milter itself costs) |\n", v, A[v] / A["null"], E[v] / E["null"], (cg && T[v] ? sprintf("%.2f×", T["null"] / T[v]) : "n/a");
        }
        if (("bare" in A) && ("opendkim" in A))
            printf "| ceiling for any milter: bare / OpenDKIM | %.2f× | %.2f× | %s | (a milter / OpenDKIM ratio cannot exceed this) |\n", A["bare"] / A["opendkim"], E["bare"] / E["opendkim"], (cg && T["bare"] ? sprintf("%.2f×", T["opendkim"] / T["bare"]) : "n/a");
        np = 0; for (v in probs) np++;
        if (np) { print ""; print "Problems:"; for (v in probs) print "- " v ": " probs[v] }
    }' "$RESULTS" >>"$LAB/summary.md"
    {
        printf '\nMap server alone (one persistent connection, %s lookups one after the other, python client in the namespace):\n\n' "$MAP_N"
        printf '| Socket | route lookups/s (p50 / p99 µs) | first route answer | tls lookups/s (p50 / p99 µs) | first tls answer |\n|---|---|---|---|---|\n'
        local row kind route tls
        for row in "${MAPROWS[@]}"; do
            IFS='|' read -r kind route tls <<<"$row"
            # shellcheck disable=SC2086
            set -- $route
            local r1="$1 ($2 / $3)" r2="${4:-}"
            # shellcheck disable=SC2086
            set -- $tls
            # shellcheck disable=SC2016 # literal backquotes (markdown code)
            printf '| %s | %s | `%s` | %s | `%s` |\n' "$kind" "$r1" "${r2//_/ }" "$1 ($2 / $3)" "${4//_/ }"
        done
    } >>"$LAB/summary.md"
}

# ---------------------------------------------------------------------------------------
# Main

main() {
    local t_start r i v order
    t_start=$(date +%s)
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    bench_install
    build_binary
    cg_setup
    # CPU used by others before we start anything (3 s sample)
    local p0 p1
    p0=$(proc_stat)
    sleep 3
    p1=$(proc_stat)
    FOREIGN_BEFORE=$(awk -v a="$p0" -v b="$p1" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f%% of %d CPUs", (y[1] - x[1] + y[2] - x[2]) / (y[3] - x[3]) * 100, n }')
    blog "machine before the run: loadavg $LOAD_BEFORE, busy $FOREIGN_BEFORE"
    lab_up >&2
    # Knot and Unbound were started by lab_up: account them as "dns"
    for v in knotd unbound; do [ ! -f "$LAB/pids/$v.pid" ] || cg_move dns "$(cat "$LAB/pids/$v.pid")"; done
    RESULTS="$LAB/results.tsv"
    : >"$RESULTS"
    mkdir -p "$LAB/pf"
    pf_dkim_key >&2
    bench_pf_setup
    opendkim_start
    nta_start
    null_start
    bench_pf_start
    blog "lab up in $(($(date +%s) - t_start)) s (incl. build): $NETNS, $LAB"
    content_check
    for ((r = 1; r <= ROUNDS; r++)); do
        # alternate the order between rounds
        order=("${VARIANTS[@]}")
        if ((r % 2 == 0)); then
            order=()
            for ((i = ${#VARIANTS[@]} - 1; i >= 0; i--)); do order+=("${VARIANTS[i]}"); done
        fi
        for v in "${order[@]}"; do phase "$v" "$r"; done
    done
    blog "map server alone ..."
    map_bench
    report
    perf_report
    {
        printf '\nWall time of this run: %s s. Daemon warnings/errors logged: nta-unix %s, nta-inet %s.\n' \
            "$(($(date +%s) - t_start))" \
            "$(grep -Ec ' (WARN|ERROR) ' "$LAB/log/nta-unix.out" || true)" "$(grep -Ec ' (WARN|ERROR) ' "$LAB/log/nta-inet.out" || true)"
    } >>"$LAB/summary.md"
    echo
    cat "$LAB/summary.md"
    [ -z "${BENCH_SUMMARY:-}" ] || cp "$LAB/summary.md" "$BENCH_SUMMARY"
}

# BENCH_SOURCE_ONLY=1: define everything, run nothing (bench/milter-cost.sh builds on this)
[ "${BENCH_SOURCE_ONLY:-0}" = 1 ] || main "$@"
