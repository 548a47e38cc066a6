# shellcheck shell=bash
# tests/e2e/lib-exim.sh: real Exim 4.96 (Debian 12's exim4-daemon-heavy) with the shipped
# exim/ fragments, the nta7516-milter daemon and the Postfix receivers of lib-postfix.sh.
#
# Sourced by case files 5x after lib.sh (and e2e_case_init) and lib-postfix.sh:
#     . "$E2E_DIR/lib-postfix.sh"; . "$E2E_DIR/lib-exim.sh"
#     ex_lab_up fallback           # daemon + pfb, pfc, pfd receivers + Exim; EXIT trap
#     ex_send int "$(pf_token)" --to user@nta.lab.test ...
#
# Exim is not installed: Postfix is, and the two packages conflict (both are the
# mail-transport-agent). ex_install fetches exim4-daemon-heavy, exim4-base and
# exim4-config with `apt-get download` and unpacks them with `dpkg -x` into $EX_ROOT (a
# cache kept between runs); the binary runs as `$EX_ROOT/usr/sbin/exim4 -C <config>`.
#
# The configuration is DEBIAN'S OWN: update-exim4.conf (from the unpacked exim4-config)
# builds it from a copy of the package's /etc/exim4 with the shipped exim/ files installed
# the way exim/README.md says (split: conf.d/main/00_nta7516-milter_macros,
# conf.d/router/190_nta7516-milter, conf.d/transport/30_nta7516-milter,
# conf.d/auth/30_nta7516-milter, nta7516-milter.acl). Lab-only differences, all in conf.d/main/000_localmacros (where
# an administrator overrides macros) or substituted afterwards like the Postfix lab does:
# paths ($LAB), the daemon's address, the filter binary under test, the lab CA for the
# fallback relay, the DKIM selector, exim_path/CONFDIR of the unpacked tree, and
# ROUTER_DNSLOOKUP_IGNORE_TARGET_HOSTS (Debian ignores MX hosts in 127/8, which is where
# the lab's hosts live). The non-split variant is generated too and checked by the case
# files with -bV / -bt.
#
# Addresses (inside the lab namespace):
#     127.0.10.3:25     Exim (local_interfaces); relay_from_hosts: 127.0.10.1
#     127.0.10.1        the internal SMTP client; the daemon's sockets :7516 / :7517
#     127.0.10.98       the external SMTP client
#     127.0.10.25/26/27 pfb (DANE MX), pfc (plain MX), pfd (fallback relay), lib-postfix.sh
# Exim's own domains (local_domains): sender.lab.test, nokey.lab.test (no DKIM key);
# relay_to_domains (Exim as backup MX): plain.lab.test.
# Logs: $LAB/exim/log/mainlog (+ rejectlog, paniclog); the daemon: $LAB/log/nta-daemon.out.

EX_SHIPPED="$E2E_REPO/exim"
EX_CACHE=${NTA_E2E_CACHE:-/var/cache/nta7516-e2e}
EX_ROOT="$EX_CACHE/exim4-unpacked"
EX_BIN="$EX_ROOT/usr/sbin/exim4"
EX_ADDR=127.0.10.3
EX_PACKAGES=(exim4-daemon-heavy exim4-base exim4-config)
# group that may read the daemon's configuration; Debian-exim joins it (exim/README.md
# step 3 does the same with the package's group nta7516-milter)
EX_GROUP=nta7516-e2e

ex_dir() { printf '%s/exim\n' "$LAB"; }
ex_conf() { printf '%s/exim/exim4.conf\n' "$LAB"; }
ex_log() { printf '%s/exim/log/mainlog\n' "$LAB"; }

# ---------------------------------------------------------------------------------------
# Install (download + unpack; the libraries come from lib.sh's E2E_PKGS_EXIM)

ex_installed() {
    [ -x "$EX_BIN" ] && getent passwd Debian-exim >/dev/null &&
        "$EX_BIN" -C /dev/null -bV 2>/dev/null | grep -q '^Exim version 4\.96 ' &&
        "$EX_BIN" -C /dev/null -bV 2>/dev/null | grep -q '^Support for:.* DANE .*DKIM'
}

ex_install() {
    local tmp f
    # the system user Exim's binary has compiled in (exim4-base's postinst would make it)
    if ! getent passwd Debian-exim >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /var/spool/exim4 \
            --shell /usr/sbin/nologin Debian-exim || e2e_die "cannot create the user Debian-exim"
    fi
    getent group "$EX_GROUP" >/dev/null || groupadd --system "$EX_GROUP" ||
        e2e_die "cannot create the group $EX_GROUP"
    id -nG Debian-exim | tr ' ' '\n' | grep -qx "$EX_GROUP" || usermod -aG "$EX_GROUP" Debian-exim ||
        e2e_die "cannot add Debian-exim to $EX_GROUP"
    ex_installed && return 0
    e2e_log "exim: downloading and unpacking ${EX_PACKAGES[*]} into $EX_ROOT"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/nta7516-e2e-exim.XXXXXX")
    chmod 755 "$tmp"
    if ! (cd "$tmp" && timeout 300 apt-get download "${EX_PACKAGES[@]}") >"$tmp/download.out" 2>&1; then
        (timeout 300 apt-get update -q && cd "$tmp" && timeout 300 apt-get download "${EX_PACKAGES[@]}") \
            >>"$tmp/download.out" 2>&1 || {
            tail -n 20 "$tmp/download.out" >&2
            rm -rf "$tmp"
            e2e_die "apt-get download ${EX_PACKAGES[*]} failed"
        }
    fi
    rm -rf "$EX_ROOT.new"
    mkdir -p "$EX_ROOT.new"
    for f in "$tmp"/*.deb; do
        dpkg -x "$f" "$EX_ROOT.new" || e2e_die "dpkg -x $f failed"
    done
    rm -rf "$tmp" "$EX_ROOT"
    mv "$EX_ROOT.new" "$EX_ROOT"
    ex_installed || e2e_die "the unpacked Exim does not run (missing libraries? see lib.sh E2E_PKGS_EXIM): $("$EX_BIN" -C /dev/null -bV 2>&1 | head -n 3)"
}

# ---------------------------------------------------------------------------------------
# Configuration

# ex_localmacros FILTER_CONFIG : the lab's macro overrides (what an administrator puts in
# conf.d/main/000_localmacros), main-section settings included
ex_localmacros() {
    local d
    d=$(ex_dir)
    cat <<EOF
# lab overrides (tests/e2e/lib-exim.sh)
MAIN_HARDCODE_PRIMARY_HOSTNAME = exim.sender.lab.test
MAIN_QUALIFY_DOMAIN = sender.lab.test
SPOOLDIR = $d/spool
log_file_path = $d/log/%slog
# no /etc/email-addresses on the test host
NO_EAA_REWRITE_REWRITE = true
# With -C, Exim's re-exec for delivery gives up root ("exim user lost privilege for
# using -C option"; the lab config is not in /etc/exim4/trusted_configs), and then cannot
# switch to the transports' user: the daemon only queues, and the case files deliver
# each message as root with -M.
queue_only = true
# Debian's dnslookup ignores MX hosts in 127/8: the lab's hosts are all there
ROUTER_DNSLOOKUP_IGNORE_TARGET_HOSTS = <; 0.0.0.0
NTA7516_MAP_SOCKET = inet:$PF_INT:7517
NTA7516_BIN = $NTA_BIN
NTA7516_CONFIG = $1
NTA7516_FALLBACK_CA = $LAB/tls/ca.crt
NTA7516_SIGNING_SELECTOR = $PF_DKIM_SELECTOR
NTA7516_DKIM_DIR = $d/dkim
CHECK_DATA_LOCAL_ACL_FILE = CONFDIR/nta7516-milter.acl
# an absolute path: a main option's value is not scanned for CONFDIR again
NTA7516_NOT_SMTP_ACL = $d/nta7516-milter-not-smtp.acl
# the portal's SMTP login (case 52): a client connecting to Exim's own address in the
# namespace comes from that address; the lab's SMTP clients (.1, .98) are not login hosts
NTA7516_PORTAL_LOGIN_HOSTS = <; 127.0.0.1 ; ::1 ; $EX_ADDR
EOF
}

# ex_debconf SPLIT : update-exim4.conf.conf (the debconf answers) for the lab
ex_debconf() {
    cat <<EOF
dc_eximconfig_configtype='internet'
dc_other_hostnames='sender.lab.test:nokey.lab.test'
dc_local_interfaces='$EX_ADDR'
dc_readhost=''
dc_relay_domains='plain.lab.test'
dc_minimaldns='false'
dc_relay_nets='$PF_INT/32'
dc_smarthost=''
CFILEMODE='644'
dc_use_split_config='$1'
dc_hide_mailname=''
dc_mailname_in_oh='true'
dc_localdelivery='mail_spool'
EOF
}

# ex_generate ETCDIR OUT : update-exim4.conf from the unpacked package, then the lab's
# paths for exim_path and CONFDIR (both fixed in the generated header)
ex_generate() {
    local etc=$1 out=$2
    bash "$EX_ROOT/usr/sbin/update-exim4.conf" -d "$etc" -o "$out.gen" >"$out.gen.out" 2>&1 ||
        e2e_die "update-exim4.conf -d $etc failed: $(cat "$out.gen.out")"
    sed -e "s|^exim_path = .*|exim_path = $EX_BIN|" \
        -e "s|^CONFDIR = /etc/exim4\$|CONFDIR = $etc|" "$out.gen" >"$out"
    rm -f "$out.gen"
}

# ex_setup FILTER_CONFIG : $LAB/exim with both configurations (split: exim4.conf, the one
# the daemon runs; non-split: exim4-nonsplit.conf), spool, log and the DKIM key
ex_setup() {
    local d etc ns
    d=$(ex_dir)
    rm -rf "$d"
    mkdir -p "$d/dkim"
    install -d -o Debian-exim -g Debian-exim -m 750 "$d/spool" "$d/log"
    # Exim reads DKIM keys in the delivery process (Debian-exim): root:Debian-exim 0640
    install -o root -g Debian-exim -m 640 "$LAB/dkim/sender.pem" "$d/dkim/sender.lab.test.pem"

    # split configuration: the README's install commands, CONFDIR = $d/etc
    etc="$d/etc"
    cp -a "$EX_ROOT/etc/exim4" "$etc"
    ex_debconf true >"$etc/update-exim4.conf.conf"
    ex_localmacros "$1" >"$etc/conf.d/main/000_localmacros"
    install -m 644 "$EX_SHIPPED/nta7516-milter.macros" "$etc/conf.d/main/00_nta7516-milter_macros"
    install -m 644 "$EX_SHIPPED/nta7516-milter.acl" "$etc/nta7516-milter.acl"
    # the lab's portal runs as root (case 52); the shipped file names nta7516-portal
    sed 's/{nta7516-portal}/{root}/' "$EX_SHIPPED/nta7516-milter-not-smtp.acl" >"$d/nta7516-milter-not-smtp.acl"
    grep -q '{root}' "$d/nta7516-milter-not-smtp.acl" || e2e_die "no portal user in nta7516-milter-not-smtp.acl"
    install -m 644 "$EX_SHIPPED/nta7516-milter.routers" "$etc/conf.d/router/190_nta7516-milter"
    install -m 644 "$EX_SHIPPED/nta7516-milter.transports" "$etc/conf.d/transport/30_nta7516-milter"
    install -m 644 "$EX_SHIPPED/nta7516-milter.authenticators" "$etc/conf.d/auth/30_nta7516-milter"
    ex_generate "$etc" "$d/exim4.conf"

    # non-split configuration: the README's commands on the template
    ns="$d/etc-nonsplit"
    cp -a "$EX_ROOT/etc/exim4" "$ns"
    ex_debconf false >"$ns/update-exim4.conf.conf"
    {
        ex_localmacros "$1"
        cat "$EX_SHIPPED/nta7516-milter.macros"
    } >"$ns/exim4.conf.localmacros"
    install -m 644 "$EX_SHIPPED/nta7516-milter.acl" "$ns/nta7516-milter.acl"
    install -m 644 "$EX_SHIPPED/nta7516-milter.routers" "$ns/nta7516-milter.routers"
    install -m 644 "$EX_SHIPPED/nta7516-milter.transports" "$ns/nta7516-milter.transports"
    install -m 644 "$EX_SHIPPED/nta7516-milter.authenticators" "$ns/nta7516-milter.authenticators"
    sed -i -e "/^### end router\/150_exim4-config_hubbed_hosts/a .include CONFDIR/nta7516-milter.routers" \
        -e "/^begin transports/a .include CONFDIR/nta7516-milter.transports" \
        -e "/^begin authenticators/a .include CONFDIR/nta7516-milter.authenticators" \
        "$ns/exim4.conf.template"
    # update-exim4.conf reads exim4.conf.localmacros only when /etc/exim4/exim4.conf.localmacros
    # exists (a fixed path, even with -d); it then just puts it in front of the template
    cat "$ns/exim4.conf.localmacros" "$ns/exim4.conf.template" >"$ns/exim4.conf.template.new"
    mv "$ns/exim4.conf.template.new" "$ns/exim4.conf.template"
    ex_generate "$ns" "$d/exim4-nonsplit.conf"
}

# ex_daemon_config NON_COMPLIANT [EXTRA_TOML] : the daemon's config ($LAB/nta.toml, also the
# filter's), readable by root and group $EX_GROUP only (like the package's 0640
# root:nta7516-milter)
ex_daemon_config() {
    nta_daemon_config "$@"
    chgrp "$EX_GROUP" "$NTA_DAEMON_CONFIG"
    chmod 640 "$NTA_DAEMON_CONFIG"
}

# ex_policy NON_COMPLIANT : rewrite the daemon's config and reload it (SIGHUP)
ex_policy() {
    ex_daemon_config "$@"
    nta_daemon_reload
}

# ---------------------------------------------------------------------------------------
# Running Exim (always in the namespace, with the lab's resolv.conf: nameserver 127.0.10.2,
# options trust-ad; without trust-ad glibc drops the AD bit and Exim finds no DANE)

# ex_exim [-C CONF] ARGS... : the exim binary with the lab configuration
ex_exim() {
    local conf
    conf=$(ex_conf)
    if [ "${1:-}" = -C ]; then
        conf=$2
        shift 2
    fi
    run_in_lab_resolv "$EX_BIN" -C "$conf" "$@"
}

ex_answers() {
    ip netns exec "$NETNS" timeout 2 bash -c "exec 3<>/dev/tcp/$EX_ADDR/25 && head -c 3 <&3 | grep -q 220" 2>/dev/null
}

# ex_start : the listening daemon (foreground mode -bdf under lab_bg; no queue runner:
# deferred mail stays until a case delivers it with -M or -qff)
ex_start() {
    local out
    out=$(ex_exim -bV 2>&1) || e2e_die "exim -bV refuses the lab configuration: $out"
    # shellcheck disable=SC2016 # $0 and $@ belong to the inner sh
    lab_bg exim unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' \
        "$LAB/resolv.conf" "$EX_BIN" -C "$(ex_conf)" -bdf
    wait_for "Exim answers SMTP on $EX_ADDR:25" 50 0.2 ex_answers ||
        e2e_die "Exim does not answer on $EX_ADDR:25 (see $LAB/log/exim.out, $(ex_dir)/log/paniclog)"
}

# ex_stop : the daemon, and every Exim process still running in the lab (deliveries)
ex_stop() {
    local p
    lab_stop exim
    [ -n "${NETNS:-}" ] && netns_exists "$NETNS" || return 0
    for p in $(ip netns pids "$NETNS" 2>/dev/null); do
        [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$EX_BIN" ] && kill -TERM "$p" 2>/dev/null
    done
    return 0
}

# ---------------------------------------------------------------------------------------
# The whole Exim lab

# ex_lab_up [NON_COMPLIANT] : daemon (default policy: fallback) + receivers + Exim; sets an
# EXIT trap that stops them (lab_down in run.sh is the backstop)
ex_lab_up() {
    local policy=${1:-fallback} n
    ex_install
    mkdir -p "$LAB/pf"
    run_in_lab ip addr replace "$EX_ADDR/32" dev lo
    run_in_lab ip addr replace "$PF_EXT/32" dev lo
    pf_tls_ca
    pf_dkim_key
    trap ex_lab_down EXIT
    for n in pfb pfc pfd; do
        [ ! -f "$(pf_log "$n")" ] || mv "$(pf_log "$n")" "$(pf_log "$n").before-${E2E_CASE:-case}.$(date +%s%N)"
    done
    pf_setup pfb 127.0.10.25 mx.nta.lab.test tls
    pf_setup pfc 127.0.10.26 mx.notlsa.lab.test plain
    pf_setup pfd 127.0.10.27 fallback.lab.test fallback
    ex_daemon_config "$policy"
    nta_daemon_start
    pf_start pfb
    pf_start pfc
    pf_start pfd
    ex_setup "$NTA_DAEMON_CONFIG"
    ex_start
}

ex_lab_down() {
    local n
    set +e
    ex_stop
    for n in pfb pfc pfd; do pf_stop "$n"; done
    lab_stop nta-daemon
}

# ---------------------------------------------------------------------------------------
# Sending and looking

# ex_send int|ext TOKEN SWAKS_ARGS... : swaks from the internal (127.0.10.1) or external
# (127.0.10.98) client to Exim (envelope sender $EX_FROM, default sender@sender.lab.test);
# output in $LAB/out/swaks-TOKEN.out ($EX_OUT); sets EX_ID (Exim message id or empty);
# returns swaks' exit status
ex_send() {
    local who=$1 token=$2 from rc=0
    shift 2
    case "$who" in
    int) from=$PF_INT ;;
    ext) from=$PF_EXT ;;
    *) e2e_die "ex_send: int or ext, not $who" ;;
    esac
    EX_OUT="$LAB/out/swaks-$token.out"
    run_in_lab timeout 60 swaks --server "$EX_ADDR:25" --local-interface "$from" \
        --helo "client.lab.test" --from "${EX_FROM:-sender@sender.lab.test}" \
        --header "Subject: e2e $token" --body "e2e message $token" \
        --timeout 30 "$@" >"$EX_OUT" 2>&1 || rc=$?
    EX_ID=$(sed -n 's/^<[~-]* *250 OK id=\([0-9A-Za-z-]*\).*/\1/p' "$EX_OUT" | tail -n 1)
    return "$rc"
}

# ex_accepted DESC int|ext TOKEN SWAKS_ARGS... : ex_send, asserting that Exim accepted it,
# then one delivery attempt (ex_deliver; not with EX_QUEUE_ONLY=1)
ex_accepted() {
    local desc=$1 rc=0
    shift
    ex_send "$@" || rc=$?
    if [ "$rc" -eq 0 ] && [ -n "$EX_ID" ]; then
        e2e_pass "$desc"
        [ "${EX_QUEUE_ONLY:-0}" = 1 ] || ex_deliver "$EX_ID"
    else
        e2e_fail "$desc: swaks exited $rc, message id '${EX_ID}'" "$(grep -E '^(<|\*\*\*)' "$EX_OUT" | tail -n 8)"
        return 1
    fi
}

# ex_logline REGEX : matching lines of Exim's mainlog
ex_logline() { grep -E -- "$1" "$(ex_log)" 2>/dev/null || true; }

# ex_assert_log DESC REGEX [TRIES] : the mainlog matches REGEX (waits up to TRIES x 0.2 s)
ex_assert_log() {
    local desc=$1 re=$2 tries=${3:-75}
    if wait_for "Exim logs /$re/" "$tries" 0.2 grep -Eq -- "$re" "$(ex_log)"; then
        e2e_pass "$desc"
    else
        e2e_fail "$desc: $(ex_log) has no line matching /$re/" "$(tail -n 15 "$(ex_log)" 2>/dev/null)"
        return 1
    fi
}

# ex_assert_nolog DESC REGEX : no mainlog line matches REGEX (now)
ex_assert_nolog() {
    local lines
    lines=$(ex_logline "$2")
    if [ -z "$lines" ]; then
        e2e_pass "$1"
    else
        e2e_fail "$1: $(ex_log) has lines matching /$2/" "$lines"
        return 1
    fi
}

# ex_queued ID : exit 0 if message ID is in Exim's queue; ex_gone ID : if it is not
ex_queued() { ex_exim -bp 2>/dev/null | grep -qF -- " $1 "; }
ex_gone() { ! ex_queued "$1"; }

# ex_deliver ID : one delivery attempt of ID, as root, in the foreground (-M: forced,
# ignores retry times); its output goes to $LAB/out/exim-M-ID.out
ex_deliver() { run_in_lab_resolv timeout 120 "$EX_BIN" -C "$(ex_conf)" -M "$1" >>"$LAB/out/exim-M-$1.out" 2>&1 || true; }

# ex_remove ID : remove ID from the queue
ex_remove() { ex_exim -Mrm "$1" >/dev/null 2>&1 || true; }

# ex_dump_logs : tails of Exim's logs (for failures)
ex_dump_logs() {
    local f
    for f in "$(ex_dir)"/log/mainlog "$(ex_dir)"/log/paniclog "$LAB/log/exim.out"; do
        [ -s "$f" ] || continue
        printf -- '--- tail of %s\n' "$f"
        tail -n 30 "$f"
    done
}
