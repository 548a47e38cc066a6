# shellcheck shell=bash
# tests/e2e/lib.sh: library of the NTA 7516 end-to-end lab.
#
# Source it from bash; it runs nothing when sourced except computing paths. The driver
# (tests/e2e/run.sh) owns the life cycle:
#     lab_install; trap e2e_finish EXIT; lab_up; <case files>; (e2e_finish tears down)
# Case files (tests/e2e/NN-name.sh) run as separate bash processes, source this file and
# call e2e_case_init; everything they need comes from the environment that lab_up exports:
#     LAB          lab directory (temporary; removed on exit unless NTA_E2E_KEEP=1)
#     NETNS        name of the lab's network namespace (only loopback inside)
#     NTA_BIN      the nta7516-milter binary under test
#     NTA_CONFIG   config for `nta7516-milter check` (resolver 127.0.10.2, trust anchor
#                  $LAB/root.dnskey: the lab root's KSK)
#     E2E_RESULTS  file with one "PASS ..." or "FAIL ..." line per assertion
#
# Addresses inside the namespace (all /32 on lo):
#     127.0.10.53:53  Knot, authoritative: the lab's own root ".", lab.test (both signed) and
#                     the children insecure.lab.test (unsigned, no DS) and bogus.lab.test
#                     (signed, wrong DS)
#     127.0.10.2:53   Unbound, validating, trust anchor: the lab root's KSK (as DS)
#     127.0.10.1 .25 .26 .27   reserved for the MTA instances of later case files
#
# Every wait is bounded (wait_for: count and interval; every probe under `timeout`).

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO=$(cd "$E2E_DIR/../.." && pwd)
export E2E_DIR E2E_REPO

# Addresses added to lo inside the namespace.
E2E_ADDRS=(127.0.10.1 127.0.10.2 127.0.10.25 127.0.10.26 127.0.10.27 127.0.10.53)
E2E_KNOT_ADDR=127.0.10.53
E2E_RESOLVER_ADDR=127.0.10.2

# ---------------------------------------------------------------------------------------
# Packages: one array per feature; lab_install installs the union of E2E_PACKAGE_SETS.
# To add a feature, add one line here and its name to E2E_PACKAGE_SETS.
# shellcheck disable=SC2034 # read through a nameref in lab_install
E2E_PKGS_BASE=(iproute2 jq openssl procps util-linux coreutils)
# shellcheck disable=SC2034
E2E_PKGS_DNS=(knot knot-dnssecutils unbound bind9-dnsutils)
# shellcheck disable=SC2034 # Postfix instances and swaks (case files 2x-4x, lib-postfix.sh)
E2E_PKGS_POSTFIX=(postfix postfix-pcre swaks)
# shellcheck disable=SC2034 # SASL login on the submission service (case file 31): Cyrus sasldb, PLAIN
E2E_PKGS_SASL=(sasl2-bin libsasl2-modules)

# shellcheck disable=SC2034 # DKIM verification of delivered mail (dkimverify)
E2E_PKGS_DKIM=(python3-dkim)
# shellcheck disable=SC2034 # packaging (case files 6x): dpkg -i, rpm -qlp, unit and man checks, logrotate
E2E_PKGS_PACKAGING=(rpm cpio logrotate man-db groff-base binutils adduser systemd)
E2E_PACKAGE_SETS=(E2E_PKGS_BASE E2E_PKGS_DNS E2E_PKGS_POSTFIX E2E_PKGS_DKIM E2E_PKGS_PACKAGING)
# shellcheck disable=SC2034 # swaks -tls (inbound STARTTLS, case file 35) needs Net::SSLeay
E2E_PKGS_SWAKS_TLS=(libnet-ssleay-perl)
E2E_PACKAGE_SETS+=(E2E_PKGS_SWAKS_TLS E2E_PKGS_SASL)
# shellcheck disable=SC2034 # tests/metrics.rs: curl scrapes /metrics and /healthz as the README shows; promtool (in prometheus) checks the alert rules
E2E_PKGS_METRICS=(curl prometheus)
E2E_PACKAGE_SETS+=(E2E_PKGS_METRICS)
# shellcheck disable=SC2034 # libraries of the unpacked exim4-daemon-heavy (case files 5x,
# lib-exim.sh); exim4 itself conflicts with postfix: downloaded and unpacked, not installed
E2E_PKGS_EXIM=(libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libldap-2.5-0 libmariadb3 libnsl2 libpam0g libpcre2-8-0 libperl5.36 libpq5 libsasl2-2 libspf2-2 libsqlite3-0)
E2E_PACKAGE_SETS+=(E2E_PKGS_EXIM)
# shellcheck disable=SC2034 # a real systemd boot of the .deb (case file 62): a Debian root and systemd-nspawn
E2E_PKGS_BOOT=(debootstrap systemd-container)
E2E_PACKAGE_SETS+=(E2E_PKGS_BOOT)
# shellcheck disable=SC2034 # the portal's browser test (tests/portal_browser.rs): headless
# Chromium over WebDriver, pdftotext for the PDF download
E2E_PKGS_PORTAL_WEB=(chromium chromium-driver poppler-utils)
E2E_PACKAGE_SETS+=(E2E_PKGS_PORTAL_WEB)
# shellcheck disable=SC2034 # the portal's store on PostgreSQL (tests/portal_postgres.rs starts its own server)
E2E_PKGS_PORTAL_PG=(postgresql)
E2E_PACKAGE_SETS+=(E2E_PKGS_PORTAL_PG)
# debconf answers given before installing (harmless for packages that are not installed)
E2E_DEBCONF=(
    "postfix postfix/main_mailer_type select No configuration"
)

# ---------------------------------------------------------------------------------------
# Output helpers

e2e_log() { printf '[e2e] %s\n' "$*"; }
e2e_warn() { printf '[e2e] WARNING: %s\n' "$*" >&2; }
e2e_die() {
    printf '[e2e] ERROR: %s\n' "$*" >&2
    exit 1
}
e2e_section() { printf '\n=== %s ===\n' "$*"; }

# ---------------------------------------------------------------------------------------
# Assertions. Each one appends a PASS/FAIL line to $E2E_RESULTS (when set) and counts in
# E2E_PASSED / E2E_FAILED of the current shell. Messages are prefixed with $E2E_CASE.

E2E_PASSED=0
E2E_FAILED=0

e2e_pass() {
    local msg="${E2E_CASE:+[$E2E_CASE] }$1"
    E2E_PASSED=$((E2E_PASSED + 1))
    [ -z "${E2E_RESULTS:-}" ] || printf 'PASS %s\n' "$msg" >>"$E2E_RESULTS"
    printf '  ok    %s\n' "$msg"
}

# e2e_fail MESSAGE [DETAIL_LINE...]
e2e_fail() {
    local msg="${E2E_CASE:+[$E2E_CASE] }$1" line
    shift
    E2E_FAILED=$((E2E_FAILED + 1))
    [ -z "${E2E_RESULTS:-}" ] || printf 'FAIL %s\n' "$msg" >>"$E2E_RESULTS"
    printf '  FAIL  %s\n' "$msg"
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/        | /'
    done
}

# assert_eq DESC EXPECTED ACTUAL [DETAIL...]
assert_eq() {
    local desc=$1 want=$2 got=$3
    shift 3
    if [ "$want" = "$got" ]; then
        e2e_pass "$desc"
    else
        e2e_fail "$desc: expected '$want', got '$got'" "$@"
    fi
}

# assert_in DESC ACTUAL ALLOWED... : ACTUAL is one of ALLOWED
assert_in() {
    local desc=$1 got=$2 a
    shift 2
    for a in "$@"; do
        if [ "$a" = "$got" ]; then
            e2e_pass "$desc"
            return 0
        fi
    done
    e2e_fail "$desc: expected one of {$*}, got '$got'"
    return 1
}

# assert_match DESC EXTENDED_REGEX TEXT
assert_match() {
    local desc=$1 re=$2 text=$3
    if printf '%s\n' "$text" | grep -Eq -- "$re"; then
        e2e_pass "$desc"
    else
        e2e_fail "$desc: no match for /$re/" "$(printf '%s\n' "$text" | head -n 20)"
        return 1
    fi
}

# assert_true DESC CMD... : CMD exits 0 (its output is shown on failure)
assert_true() {
    local desc=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
        e2e_pass "$desc"
    else
        e2e_fail "$desc: command exited $rc: $*" "$(printf '%s\n' "$out" | tail -n 20)"
        return 1
    fi
}

# assert_exit DESC CODE CMD... : CMD exits with CODE
assert_exit() {
    local desc=$1 want=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" -eq "$want" ]; then
        e2e_pass "$desc"
    else
        e2e_fail "$desc: expected exit $want, got $rc: $*" "$(printf '%s\n' "$out" | tail -n 20)"
        return 1
    fi
}

# e2e_counts FILE -> prints "PASSED FAILED" from a results file
e2e_counts() {
    local p=0 f=0
    if [ -f "$1" ]; then
        p=$(grep -c '^PASS ' "$1" || true)
        f=$(grep -c '^FAIL ' "$1" || true)
    fi
    printf '%s %s\n' "$p" "$f"
}

# ---------------------------------------------------------------------------------------
# Bounded waiting

# wait_for DESC TRIES INTERVAL CMD... : run CMD until it exits 0, at most TRIES times,
# sleeping INTERVAL seconds between tries. A command (not a shell function) is limited to
# E2E_PROBE_TIMEOUT seconds per try; a shell function must bound its own probes
# (the lab's dig helpers use +time=2 +tries=1).
wait_for() {
    local desc=$1 tries=$2 interval=$3 i out=""
    shift 3
    for ((i = 1; i <= tries; i++)); do
        if declare -F "$1" >/dev/null; then
            if out=$("$@" 2>&1); then return 0; fi
        elif out=$(timeout -k 2 "${E2E_PROBE_TIMEOUT:-10}" "$@" 2>&1); then
            return 0
        fi
        [ "$i" -eq "$tries" ] || sleep "$interval"
    done
    e2e_warn "timed out waiting for: $desc ($tries tries, ${interval}s apart); last output:"
    printf '%s\n' "$out" | tail -n 15 | sed 's/^/        | /' >&2
    return 1
}

# ---------------------------------------------------------------------------------------
# Running things inside the namespace

# run_in_lab CMD... : run CMD inside the lab namespace (foreground)
run_in_lab() {
    ip netns exec "$NETNS" "$@"
}

# run_in_lab_resolv CMD... : like run_in_lab, with /etc/resolv.conf replaced by the lab's
# (nameserver 127.0.10.2) in a private mount namespace: for glibc-resolver users (Postfix, Exim, swaks).
run_in_lab_resolv() {
    # shellcheck disable=SC2016 # $0 and $@ belong to the inner sh
    ip netns exec "$NETNS" unshare -m sh -c \
        'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$LAB/resolv.conf" "$@"
}

# lab_bg NAME CMD... : start a long-running CMD inside the namespace in the background;
# stdout/stderr go to $LAB/log/NAME.out, the pid to $LAB/pids/NAME.pid (lab_down stops it).
lab_bg() {
    local name=$1
    shift
    ip netns exec "$NETNS" "$@" </dev/null >>"$LAB/log/$name.out" 2>&1 &
    echo $! >"$LAB/pids/$name.pid"
}

# lab_dig ARGS... : dig through the validating resolver (one try, 2 s)
lab_dig() {
    run_in_lab dig +time=2 +tries=1 +dnssec "@$E2E_RESOLVER_ADDR" "$@"
}

# knot_dig ARGS... : dig straight at Knot, no recursion
knot_dig() {
    run_in_lab dig +time=2 +tries=1 +norec +dnssec "@$E2E_KNOT_ADDR" "$@"
}

# dig_flags DIG_OUTPUT -> the header flags, e.g. "qr rd ra ad"
dig_flags() { printf '%s\n' "$1" | sed -n 's/^;; flags: \([^;]*\);.*/\1/p' | head -n 1; }
# dig_status DIG_OUTPUT -> NOERROR, NXDOMAIN, SERVFAIL ...
dig_status() { printf '%s\n' "$1" | sed -n 's/.*, status: \([A-Z]*\),.*/\1/p' | head -n 1; }

# ---------------------------------------------------------------------------------------
# Installing

lab_install() {
    local set p pkgs=() missing=() log
    for set in "${E2E_PACKAGE_SETS[@]}"; do
        declare -n _e2e_set="$set"
        pkgs+=("${_e2e_set[@]}")
        unset -n _e2e_set
    done
    for p in "${pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ] && [ "${NTA_E2E_APT:-auto}" != always ]; then
        e2e_log "packages: all ${#pkgs[@]} present (NTA_E2E_APT=always reinstalls)"
        return 0
    fi
    e2e_log "packages: installing ${missing[*]:-${pkgs[*]}}"
    command -v apt-get >/dev/null || e2e_die "apt-get not found: the e2e lab needs Debian 12 (or install: ${pkgs[*]})"
    log=$(mktemp "${TMPDIR:-/tmp}/nta7516-e2e-apt.XXXXXX")
    export DEBIAN_FRONTEND=noninteractive
    printf '%s\n' "${E2E_DEBCONF[@]}" | debconf-set-selections >>"$log" 2>&1 || true
    local try ok=0
    for try in 1 2 3; do
        if timeout 600 apt-get update -q >>"$log" 2>&1 &&
            timeout 900 apt-get install -y -q --no-install-recommends "${pkgs[@]}" >>"$log" 2>&1; then
            ok=1
            break
        fi
        e2e_warn "apt-get failed (try $try of 3)"
        sleep $((try * 5))
    done
    if [ "$ok" -ne 1 ]; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        e2e_die "could not install the lab's packages: ${pkgs[*]}"
    fi
    rm -f "$log"
    e2e_log "packages: installed"
}

# ---------------------------------------------------------------------------------------
# Bringing the lab up and down

# netns_exists NAME
netns_exists() { ip netns list 2>/dev/null | awk '{ print $1 }' | grep -qxF -- "$1"; }

# netns_up: the namespace with loopback only and the lab's /32 addresses
netns_up() {
    local a
    ip netns add "$NETNS"
    echo "$NETNS" >"$LAB/netns"
    run_in_lab ip link set lo up
    for a in "${E2E_ADDRS[@]}"; do
        run_in_lab ip addr add "$a/32" dev lo
    done
    printf 'nameserver %s\noptions edns0 trust-ad\n' "$E2E_RESOLVER_ADDR" >"$LAB/resolv.conf"
}

# lab_tls_cert: the receiving MX's key and self-signed certificate ($LAB/tls/mx.{key,crt})
# and the DANE-EE SPKI SHA-256 for its TLSA 3 1 1 records ($LAB/tls/mx.tlsa)
lab_tls_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$LAB/tls/mx.key" -out "$LAB/tls/mx.crt" -days 30 -subj /CN=mx.nta.lab.test \
        -addext "subjectAltName=DNS:mx.nta.lab.test,DNS:relay.ntamx.lab.test,DNS:mx.insecure.lab.test,DNS:mx.bogus.lab.test" \
        >"$LAB/log/openssl.out" 2>&1
    openssl x509 -in "$LAB/tls/mx.crt" -noout -pubkey |
        openssl pkey -pubin -outform DER |
        sha256sum | cut -d' ' -f1 >"$LAB/tls/mx.tlsa"
    [ "$(wc -c <"$LAB/tls/mx.tlsa")" -eq 65 ] || e2e_die "could not compute the TLSA hash"
}

# ym OFFSET_MONTHS -> YYYY-MM relative to this month (UTC)
ym() { date -u -d "$(date -u +%Y-%m-15) ${1} months" +%Y-%m; }

# lab_render FILE.in OUT : substitute the lab's placeholders
lab_render() {
    sed -e "s|@LAB@|$LAB|g" \
        -e "s|@SERIAL@|$(date -u +%s)|g" \
        -e "s|@START@|$(ym -12)|g" \
        -e "s|@END@|$(ym +12)|g" \
        -e "s|@EXPIRED_START@|$(ym -24)|g" \
        -e "s|@EXPIRED_END@|$(ym -2)|g" \
        -e "s|@NOTYET_START@|$(ym +2)|g" \
        -e "s|@NOTYET_END@|$(ym +14)|g" \
        -e "s|@TLSA@|$(cat "$LAB/tls/mx.tlsa")|g" \
        "$1" >"$2"
    if grep -q '@[A-Z_]*@' "$2"; then
        e2e_die "unrendered placeholder in $2: $(grep -o '@[A-Z_]*@' "$2" | sort -u | tr '\n' ' ')"
    fi
}

lab_render_zones() {
    local f
    for f in "$E2E_DIR"/zones/*.zone.in; do
        lab_render "$f" "$LAB/knot/zones/$(basename "$f" .in)"
    done
}

# fqdn NAME -> NAME with exactly one trailing dot ("." for the root)
fqdn() { printf '%s.\n' "${1%.}"; }

# knot_zone_signed ZONE : Knot serves ZONE's DNSKEY with an RRSIG
knot_zone_signed() {
    knot_dig "$1" DNSKEY +noall +answer | awk -v z="$(fqdn "$1")" '$1 == z && $4 == "RRSIG" && $5 == "DNSKEY" { ok = 1 } END { exit !ok }'
}
# knot_zone_loaded ZONE : Knot answers authoritatively for ZONE's SOA
knot_zone_loaded() {
    local out
    out=$(knot_dig "$1" SOA) && [ "$(dig_status "$out")" = NOERROR ] && dig_flags "$out" | grep -qw aa
}

knotc_() { knotc -c "$LAB/knot/knot.conf" -t 10 "$@"; }
keymgr_() { keymgr -c "$LAB/knot/knot.conf" "$@"; }

knot_start() {
    lab_render "$E2E_DIR/conf/knot.conf.in" "$LAB/knot/knot.conf"
    knotc_ conf-check >"$LAB/log/knot-conf-check.out" 2>&1 ||
        e2e_die "knot.conf does not check: $(cat "$LAB/log/knot-conf-check.out")"
    lab_bg knotd knotd -c "$LAB/knot/knot.conf"
    wait_for "Knot serves insecure.lab.test" 100 0.2 knot_zone_loaded insecure.lab.test ||
        e2e_die "Knot did not load its zones (see $LAB/knot/knotd.log)"
    wait_for "Knot signs the root zone" 100 0.2 knot_zone_signed . ||
        e2e_die "Knot did not sign the root zone"
    wait_for "Knot signs lab.test" 100 0.2 knot_zone_signed lab.test ||
        e2e_die "Knot did not sign lab.test"
    wait_for "Knot signs bogus.lab.test" 100 0.2 knot_zone_signed bogus.lab.test ||
        e2e_die "Knot did not sign bogus.lab.test"
}

# knot_add_ds PARENT CHILD [bogus] : put CHILD's DS (its KSK, digest type 2) into PARENT,
# through a Knot zone transaction (Knot re-signs PARENT); with "bogus", the real key tag and
# algorithm with a random digest, so that validators see CHILD as bogus.
knot_add_ds() {
    local parent=$1 child=$2 mode=${3:-real} ds tag
    # pitfall: the digest type is field 5 of keymgr's "zone. DS tag alg digesttype digest"
    ds=$(keymgr_ "$child" ds | awk '$2 == "DS" && $5 == 2 { print $3, $4, $5, $6; exit }')
    [ -n "$ds" ] || e2e_die "keymgr gave no DS (digest type 2) for $child"
    tag=${ds%% *}
    if [ "$mode" = bogus ]; then
        ds="${ds% *} $(openssl rand -hex 32)"
    fi
    {
        knotc_ zone-begin "$parent" &&
            knotc_ zone-set "$parent" "$(fqdn "$child")" 300 DS "$ds" &&
            knotc_ zone-commit "$parent"
    } >>"$LAB/log/knotc.out" 2>&1 || {
        knotc_ zone-abort "$parent" >/dev/null 2>&1 || true
        e2e_die "could not add the DS of $child to $parent: $(tail -n 5 "$LAB/log/knotc.out")"
    }
    wait_for "Knot serves the DS of $child" 50 0.2 knot_has_ds "$child" "$tag" ||
        e2e_die "Knot does not serve the DS of $child"
}

# knot_has_ds NAME TAG : Knot answers NAME DS with a record of key tag TAG
knot_has_ds() {
    knot_dig "$1" DS +short | awk -v t="$2" '$1 == t { ok = 1 } END { exit !ok }'
}

# lab_trust_anchors: the lab root's KSK as
#   $LAB/unbound/root.ds  DS records, digest type 2 (for Unbound's trust-anchor-file)
#   $LAB/root.dnskey      `. IN DNSKEY 257 3 13 <b64>` (for the product's trust_anchor_file)
# Why the root and not lab.test: hickory (0.26) accepts a DNSKEY RRset at a non-root anchor
# only if every key in it is an anchor or the parent's DS can be fetched; with a KSK-only
# anchor at lab.test it asks for lab.test's DS, which nobody can give, and calls all bogus.
lab_trust_anchors() {
    keymgr_ . ds | awk '$2 == "DS" && $5 == 2' >"$LAB/unbound/root.ds"
    [ -s "$LAB/unbound/root.ds" ] || e2e_die "no DS (digest type 2) for the root from keymgr"
    # the KSK as served (flags 257), without TTL, class IN, base64 in one piece
    knot_dig . DNSKEY +noall +answer |
        awk '$4 == "DNSKEY" && $5 == 257 { b = ""; for (i = 8; i <= NF; i++) b = b $i; print $1 " IN DNSKEY 257 " $6 " " $7 " " b }' \
            >"$LAB/root.dnskey"
    [ -s "$LAB/root.dnskey" ] || e2e_die "no KSK (flags 257) in the root's DNSKEY RRset"
}

unbound_start() {
    lab_render "$E2E_DIR/conf/unbound.conf.in" "$LAB/unbound/unbound.conf"
    unbound-checkconf "$LAB/unbound/unbound.conf" >"$LAB/log/unbound-checkconf.out" 2>&1 ||
        e2e_die "unbound.conf does not check: $(cat "$LAB/log/unbound-checkconf.out")"
    lab_bg unbound unbound -d -c "$LAB/unbound/unbound.conf"
    wait_for "Unbound answers lab.test SOA with AD" 100 0.2 \
        sh -c "ip netns exec '$NETNS' dig +time=2 +tries=1 +dnssec @$E2E_RESOLVER_ADDR lab.test SOA | grep -Eq '^;; flags: [a-z ]* ad[ ;]'" ||
        e2e_die "Unbound does not validate lab.test (see $LAB/unbound/unbound.log)"
    wait_for "Unbound finds bogus.lab.test bogus" 10 0.2 \
        sh -c "ip netns exec '$NETNS' dig +time=2 +tries=1 +dnssec @$E2E_RESOLVER_ADDR bogus.lab.test SOA | grep -q 'status: SERVFAIL'" ||
        e2e_die "Unbound does not see bogus.lab.test as bogus"
}

# nta_write_config FILE [NAMESERVER_IP] [EXTRA_TOML] : a product config with the lab's trust
# anchor and NAMESERVER_IP:53 (default: Unbound) as its only nameserver; EXTRA_TOML is
# appended (further sections: [server], [policy], ...)
nta_write_config() {
    {
        printf '# written by tests/e2e/lib.sh\n'
        printf '[dns]\n'
        printf 'nameservers = ["%s:53"]\n' "${2:-$E2E_RESOLVER_ADDR}"
        printf 'trust_anchor_file = "%s"\n' "$LAB/root.dnskey"
        printf 'timeout = "5s"\n'
        [ -z "${3:-}" ] || printf '\n%s\n' "$3"
    } >"$1"
}

# lab_up: create $LAB and $NETNS, start Knot and Unbound with the fixtures, write the
# product config, and export the environment the case files use. Dies on any failure
# (the caller's EXIT trap tears down what exists).
lab_up() {
    LAB=$(mktemp -d "${TMPDIR:-/tmp}/nta7516-e2e.XXXXXX")
    chmod 755 "$LAB"
    NETNS="nta7516-e2e-$$"
    E2E_RESULTS="$LAB/results"
    NTA_CONFIG="$LAB/nta-check.toml"
    export LAB NETNS E2E_RESULTS NTA_CONFIG
    : >"$E2E_RESULTS"
    mkdir -p "$LAB"/knot/run "$LAB"/knot/db "$LAB"/knot/zones "$LAB"/unbound "$LAB"/tls \
        "$LAB"/log "$LAB"/pids "$LAB"/out
    e2e_log "lab: $LAB, namespace $NETNS"
    netns_up
    lab_tls_cert
    lab_render_zones
    knot_start
    knot_add_ds . lab.test
    knot_add_ds lab.test bogus.lab.test bogus
    lab_trust_anchors
    unbound_start
    nta_write_config "$NTA_CONFIG"
    e2e_log "lab up: Knot on $E2E_KNOT_ADDR:53, Unbound on $E2E_RESOLVER_ADDR:53"
}

# lab_stop NAME : stop one background process started with lab_bg (TERM, then KILL after 5 s);
# only if it still runs inside our namespace
lab_stop() {
    local pidfile="$LAB/pids/$1.pid" pid i
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    rm -f "$pidfile"
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then return 0; fi
    [ "$(ip netns identify "$pid" 2>/dev/null)" = "$NETNS" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# lab_dump_logs : the tails of the daemons' logs (for failures)
lab_dump_logs() {
    local f
    [ -n "${LAB:-}" ] && [ -d "$LAB" ] || return 0
    for f in "$LAB/knot/knotd.log" "$LAB/unbound/unbound.log" "$LAB"/log/*.out; do
        [ -s "$f" ] || continue
        printf -- '--- tail of %s\n' "$f"
        tail -n 25 "$f"
    done
}

# lab_down: stop everything lab_up (and case files via lab_bg) started, delete the
# namespace, remove $LAB (kept when NTA_E2E_KEEP=1). Idempotent, never fails.
lab_down() {
    local f pids i
    [ -n "${LAB:-}" ] || return 0
    if [ -d "$LAB/pids" ]; then
        for f in "$LAB"/pids/*.pid; do
            [ -e "$f" ] || continue
            lab_stop "$(basename "$f" .pid)"
        done
    fi
    if [ -n "${NETNS:-}" ] && netns_exists "$NETNS"; then
        # anything else still running inside our namespace was started by this lab
        for ((i = 0; i < 30; i++)); do
            pids=$(ip netns pids "$NETNS" 2>/dev/null || true)
            [ -n "$pids" ] || break
            # shellcheck disable=SC2086
            if [ "$i" -lt 20 ]; then kill -TERM $pids 2>/dev/null || true; else kill -KILL $pids 2>/dev/null || true; fi
            sleep 0.1
        done
        ip netns del "$NETNS" 2>/dev/null || e2e_warn "could not delete namespace $NETNS"
    fi
    if [ "${NTA_E2E_KEEP:-0}" = 1 ]; then
        e2e_log "NTA_E2E_KEEP=1: lab directory kept: $LAB"
    else
        rm -rf "$LAB"
    fi
    LAB=""
}

# ---------------------------------------------------------------------------------------
# Case files

# e2e_case_init : call at the top of a case file (checks that run.sh set up the lab)
e2e_case_init() {
    E2E_CASE=${E2E_CASE:-$(basename "$0" .sh)}
    local v
    for v in LAB NETNS NTA_BIN NTA_CONFIG E2E_RESULTS; do
        [ -n "${!v:-}" ] || e2e_die "$v is not set: run case files through tests/e2e/run.sh"
    done
    netns_exists "$NETNS" || e2e_die "namespace $NETNS does not exist"
}
