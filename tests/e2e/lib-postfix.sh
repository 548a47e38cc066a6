# shellcheck shell=bash
# tests/e2e/lib-postfix.sh: real Postfix instances and the nta7516-milter daemon in the lab.
#
# Sourced by case files 2x-4x after lib.sh (and e2e_case_init):
#     . "$E2E_DIR/lib-postfix.sh"
#     pf_lab_up fallback          # daemon + pfb, pfc, pfd receivers + pfa sender; EXIT trap
#     pf_send int "$(pf_token)" --to user@nta.lab.test ...
#
# Addresses (all inside the lab namespace):
#     127.0.10.1:25     pfa: the sending Postfix, configured FROM THE SHIPPED postfix/main.cf,
#                       postfix/master.cf and postfix/nta7516-milter_header_checks (only
#                       addresses and paths substituted); own domains sender.lab.test
#                       (DKIM key e2e._domainkey); its subdomain nokey.sender.lab.test
#                       has no key of its own (451)
#     127.0.10.1:7516   the daemon's milter    127.0.10.1:7517  its socketmap server
#     127.0.10.25:25    pfb: receiver with STARTTLS, the lab cert (TLSA in the zones): the
#                       MX of nta.lab.test, the ntamx host relay.ntamx.lab.test
#     127.0.10.26:25    pfc: plain receiver without TLS (mx.notlsa, mx.ntamx)
#     127.0.10.27:25    pfd: fallback relay fallback.lab.test, cert from the lab CA
#     127.0.10.1:2525   pfa's inbound listener with STARTTLS (lab cert $LAB/tls/mx.crt): the
#                       same smtpd, milters and restrictions as :25 (case file 35)
#     127.0.10.98       "external" SMTP client address (not in [outbound] networks); the
#                       SPF records of ext/plainext/quarext.lab.test allow it
#     127.0.10.97       "spoofing" external client: not in [outbound] networks, and no SPF
#                       record of the lab allows it (pf_send spoof)
#     127.0.10.28       down.ntamx2.lab.test: nothing listens (first ntamx of ntamx2)
# Every instance delivers to one maildir, $LAB/pf/<name>/mail/inbox/new/ (virtual(8) adds
# Delivered-To: <recipient>).
# Logs: $LAB/log/<name>.maillog (Postfix), $LAB/log/nta-daemon.out (the daemon).
# Audit: every daemon started here writes [audit] file = $LAB/audit/audit.log, so the whole
# e2e run makes ONE hash chain across restarts (checked by 90-audit-verify); each
# pf_lab_up appends its case name to $LAB/audit/cases.

PF_SHIPPED="$E2E_REPO/postfix"
# PF_SOCKETS=inet (default): the daemon on inet:127.0.10.1:7516/7517, as shipped with the
# address substituted; PF_SOCKETS=unix: the postfix/README.md unix-socket variant, sockets
# in pfa's queue directory, Postfix using the relative names unix:nta7516-milter/*.sock
PF_SOCKETS=${PF_SOCKETS:-inet}
PF_CONF="$E2E_DIR/conf/postfix"
PF_INT=127.0.10.1
PF_EXT=127.0.10.98
PF_SPOOF=127.0.10.97
# pfa's inbound listener with STARTTLS (port 25 stays as shipped: no TLS)
PF_TLS_PORT=2525
# the audit log of every daemon started through nta_daemon_config (set it empty: none)
PF_AUDIT_FILE=${PF_AUDIT_FILE-${LAB:-}/audit/audit.log}
# TOML lines for the daemon's [inbound] section (empty: no section, the defaults), e.g.
#     PF_INBOUND='authserv_id = "mx.sender.lab.test"
#     dmarc = "honour"'
PF_INBOUND=${PF_INBOUND:-}
# TOML lines added to the daemon's [outbound] section, e.g. 'require_own_from = true'
PF_OUTBOUND=${PF_OUTBOUND:-}
# TOML lines added to the daemon's [policy] section, e.g. 'default = "standard"'
PF_POLICY=${PF_POLICY:-}

# $LAB/pf/NAME/{etc,queue,data,mail}: config directory, queue, data, maildirs
pf_dir() { printf '%s/pf/%s\n' "$LAB" "$1"; }
pf_etc() { printf '%s/pf/%s/etc\n' "$LAB" "$1"; }
pf_log() { printf '%s/log/%s.maillog\n' "$LAB" "$1"; }
pf_mail() { printf '%s/mail\n' "$(pf_dir "$1")"; }

# postfix_ NAME ARGS... : the postfix command for instance NAME, in the namespace with
# the lab's resolv.conf (a mount namespace that the started master keeps)
postfix_() {
    local d
    d=$(pf_etc "$1")
    shift
    run_in_lab_resolv postfix -c "$d" "$@"
}

# pf_render IN OUT NAME ADDR HOSTNAME
pf_render() {
    sed -e "s|@NAME@|$3|g" -e "s|@DIR@|$(pf_dir "$3")|g" -e "s|@ADDR@|$4|g" \
        -e "s|@HOSTNAME@|$5|g" -e "s|@LOGDIR@|$LAB/log|g" -e "s|@LAB@|$LAB|g" "$1" >>"$2"
    if grep -q '@[A-Z_]*@' "$2"; then
        e2e_die "unrendered placeholder in $2: $(grep -o '@[A-Z_]*@' "$2" | sort -u | tr '\n' ' ')"
    fi
}

# pf_sockdir : where the daemon's unix sockets live in PF_SOCKETS=unix mode
pf_sockdir() { printf '%s/queue/nta7516-milter\n' "$(pf_dir pfa)"; }

# pf_shipped_main : the shipped postfix/main.cf with the lab's addresses and paths
pf_shipped_main() {
    local milter="inet:$PF_INT:7516" map="inet:$PF_INT:7517"
    if [ "$PF_SOCKETS" = unix ]; then
        milter=unix:nta7516-milter/milter.sock
        map=unix:nta7516-milter/map.sock
    fi
    sed -e "s|inet:127\.0\.0\.1:7516|$milter|g" \
        -e "s|inet:127\.0\.0\.1:7517|$map|g" \
        -e "s|/etc/postfix/nta7516-milter_header_checks|$(pf_etc pfa)/nta7516-milter_header_checks|g" \
        -e "s|/etc/postfix/nta7516-milter_bounce.cf|$(pf_etc pfa)/nta7516-milter_bounce.cf|g" \
        "$PF_SHIPPED/main.cf"
}

# pf_setup NAME ADDR HOSTNAME ROLE : write the instance's main.cf/master.cf;
# ROLE: sender | tls (lab MX cert) | plain (no TLS) | fallback (lab-CA cert)
pf_setup() {
    local name=$1 addr=$2 host=$3 role=$4 d
    rm -rf "$(pf_dir "$name")"
    mkdir -p "$(pf_dir "$name")"/{etc,queue,data,mail}
    chown postfix "$(pf_dir "$name")/data"
    chown 65534:65534 "$(pf_mail "$name")"
    d=$(pf_etc "$name")
    : >"$d/main.cf"
    : >"$d/master.cf"
    pf_render "$PF_CONF/main-base.cf.in" "$d/main.cf" "$name" "$addr" "$host"
    pf_render "$PF_CONF/master-base.cf.in" "$d/master.cf" "$name" "$addr" "$host"
    case "$role" in
    sender)
        pf_render "$PF_CONF/main-sender.cf.in" "$d/main.cf" "$name" "$addr" "$host"
        {
            printf '\n# --- the shipped postfix/main.cf (only addresses and paths substituted)\n'
            pf_shipped_main
        } >>"$d/main.cf"
        {
            printf '\n# --- the shipped postfix/master.cf (only paths substituted)\n'
            sed -e "s|/etc/postfix/nta7516-milter_sender_login|$d/nta7516-milter_sender_login|g" \
                "$PF_SHIPPED/master.cf"
        } >>"$d/master.cf"
        cp "$PF_SHIPPED/nta7516-milter_header_checks" "$d/nta7516-milter_header_checks"
        # the login table with the lab's own domain for the shipped example domain
        sed -e 's|zkh\\\.example|sender\\.lab\\.test|g' "$PF_SHIPPED/nta7516-milter_sender_login" \
            >"$d/nta7516-milter_sender_login"
        cp "$PF_SHIPPED/nta7516-milter_bounce.cf" "$d/nta7516-milter_bounce.cf"
        # the inbound MX listener with STARTTLS: main.cf's smtpd settings (milters,
        # restrictions) plus TLS with the lab cert; TLS in the Received header and the log
        {
            printf '\n# --- lab: inbound listener with STARTTLS (tests/e2e/lib-postfix.sh, case file 35)\n'
            printf '%s:%s inet n       -       n       -       -       smtpd\n' "$addr" "$PF_TLS_PORT"
            printf '  -o smtpd_tls_security_level=may\n'
            printf '  -o smtpd_tls_cert_file=%s\n' "$LAB/tls/mx.crt"
            printf '  -o smtpd_tls_key_file=%s\n' "$LAB/tls/mx.key"
            printf '  -o smtpd_tls_received_header=yes\n'
            printf '  -o smtpd_tls_loglevel=1\n'
        } >>"$d/master.cf"
        ;;
    tls | plain | fallback)
        pf_render "$PF_CONF/main-receiver.cf.in" "$d/main.cf" "$name" "$addr" "$host"
        case "$role" in
        tls) printf 'smtpd_tls_security_level = may\nsmtpd_tls_chain_files = %s, %s\n' \
            "$LAB/tls/mx.key" "$LAB/tls/mx.crt" >>"$d/main.cf" ;;
        fallback) printf 'smtpd_tls_security_level = may\nsmtpd_tls_chain_files = %s, %s\n' \
            "$LAB/tls/fallback.key" "$LAB/tls/fallback.crt" >>"$d/main.cf" ;;
        plain) printf 'smtpd_tls_security_level = none\n' >>"$d/main.cf" ;;
        esac
        ;;
    *) e2e_die "pf_setup: unknown role $role" ;;
    esac
}

# pf_start NAME : check and start an instance, wait until it answers SMTP
pf_start() {
    local name=$1 addr d out
    d=$(pf_etc "$name")
    addr=$(sed -n 's/^inet_interfaces = //p' "$d/main.cf")
    # postfix(1) writes its fatal errors to stderr only on a tty, hence `script`
    out=$(run_in_lab_resolv script -qec "postfix -c $d start" /dev/null 2>&1) ||
        e2e_die "postfix $name does not start: $out"
    wait_for "postfix $name answers SMTP on $addr:25" 50 0.2 \
        ip netns exec "$NETNS" bash -c "exec 3<>/dev/tcp/$addr/25 && head -c 3 <&3 | grep -q 220" ||
        e2e_die "postfix $name does not answer on $addr:25 (see $(pf_log "$name"))"
}

# pf_stop NAME : stop an instance (idempotent)
pf_stop() {
    local d
    d=$(pf_etc "$1")
    [ -f "$d/main.cf" ] || return 0
    [ -n "${NETNS:-}" ] && netns_exists "$NETNS" || return 0
    if [ -f "$(pf_dir "$1")/queue/pid/master.pid" ]; then
        run_in_lab postfix -c "$d" stop >/dev/null 2>&1 || true
    fi
}

# ---------------------------------------------------------------------------------------
# Lab credentials: a CA for the fallback relay, the DKIM key of sender.lab.test

# pf_tls_ca : $LAB/tls/ca.{key,crt} and the fallback relay's cert, signed by that CA
pf_tls_ca() {
    [ -s "$LAB/tls/fallback.crt" ] && return 0
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$LAB/tls/ca.key" -out "$LAB/tls/ca.crt" -days 30 -subj "/CN=NTA 7516 lab CA" &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout "$LAB/tls/fallback.key" -out "$LAB/tls/fallback.csr" -subj /CN=fallback.lab.test &&
            printf 'subjectAltName=DNS:fallback.lab.test\n' >"$LAB/tls/fallback.ext" &&
            openssl x509 -req -in "$LAB/tls/fallback.csr" -CA "$LAB/tls/ca.crt" -CAkey "$LAB/tls/ca.key" \
                -CAcreateserial -days 30 -extfile "$LAB/tls/fallback.ext" -out "$LAB/tls/fallback.crt"
    } >>"$LAB/log/openssl.out" 2>&1 || e2e_die "could not make the lab CA (see $LAB/log/openssl.out)"
}

PF_DKIM_SELECTOR=e2e
PF_DKIM_NAME="$PF_DKIM_SELECTOR._domainkey.sender.lab.test"

# pf_dkim_publish NAME PEM : the public key of the RSA key PEM (made when missing:
# RSA-2048, mode 0600) as "v=DKIM1; k=rsa; p=..." TXT at NAME in lab.test (Knot zone
# transaction; Knot re-signs lab.test); waits until Unbound serves it. For other
# domains' keys (case file 35: ext.lab.test); sender.lab.test's is pf_dkim_key.
pf_dkim_publish() {
    local name=$1 pem=$2 pub rdata i
    mkdir -p "$(dirname "$pem")"
    if [ ! -s "$pem" ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pem" \
            >>"$LAB/log/openssl.out" 2>&1 || e2e_die "could not make the DKIM key $pem"
        chmod 600 "$pem"
    fi
    if knot_dig "$name" TXT +short | grep -q 'v=DKIM1'; then return 0; fi
    pub=$(openssl pkey -in "$pem" -pubout -outform DER | base64 -w0)
    # TXT strings are at most 255 bytes: split the key
    rdata="\"v=DKIM1; k=rsa; p=${pub:0:200}\""
    for ((i = 200; i < ${#pub}; i += 200)); do
        rdata+=" \"${pub:i:200}\""
    done
    {
        knotc_ zone-begin lab.test &&
            knotc_ zone-set lab.test "$name." 300 TXT "$rdata" &&
            knotc_ zone-commit lab.test
    } >>"$LAB/log/knotc.out" 2>&1 || {
        knotc_ zone-abort lab.test >/dev/null 2>&1 || true
        e2e_die "could not publish the DKIM key record $name: $(tail -n 5 "$LAB/log/knotc.out")"
    }
    wait_for "Unbound serves the DKIM key record $name" 50 0.2 \
        sh -c "ip netns exec '$NETNS' dig +time=2 +tries=1 +short @$E2E_RESOLVER_ADDR '$name' TXT | grep -q 'v=DKIM1'" ||
        e2e_die "the DKIM key record $name is not served"
}

# pf_dkim_key : RSA-2048 key $LAB/dkim/sender.pem and its public key in DNS at
# e2e._domainkey.sender.lab.test (Knot zone transaction; Knot re-signs lab.test)
pf_dkim_key() {
    local pub rdata i
    mkdir -p "$LAB/dkim"
    if [ ! -s "$LAB/dkim/sender.pem" ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$LAB/dkim/sender.pem" \
            >>"$LAB/log/openssl.out" 2>&1 || e2e_die "could not make the DKIM key"
        chmod 600 "$LAB/dkim/sender.pem"
    fi
    if knot_dig "$PF_DKIM_NAME" TXT +short | grep -q 'v=DKIM1'; then return 0; fi
    pub=$(openssl pkey -in "$LAB/dkim/sender.pem" -pubout -outform DER | base64 -w0)
    # TXT strings are at most 255 bytes: split the key
    rdata="\"v=DKIM1; k=rsa; p=${pub:0:200}\""
    for ((i = 200; i < ${#pub}; i += 200)); do
        rdata+=" \"${pub:i:200}\""
    done
    {
        knotc_ zone-begin lab.test &&
            knotc_ zone-set lab.test "$PF_DKIM_NAME." 300 TXT "$rdata" &&
            knotc_ zone-commit lab.test
    } >>"$LAB/log/knotc.out" 2>&1 || {
        knotc_ zone-abort lab.test >/dev/null 2>&1 || true
        e2e_die "could not publish the DKIM key: $(tail -n 5 "$LAB/log/knotc.out")"
    }
    wait_for "Unbound serves the DKIM key record" 50 0.2 \
        sh -c "ip netns exec '$NETNS' dig +time=2 +tries=1 +short @$E2E_RESOLVER_ADDR '$PF_DKIM_NAME' TXT | grep -q 'v=DKIM1'" ||
        e2e_die "the DKIM key record is not served"
}

# ---------------------------------------------------------------------------------------
# The daemon under test

NTA_DAEMON_CONFIG="${LAB:-}/nta.toml"

# nta_daemon_config NON_COMPLIANT [EXTRA_TOML] : write $LAB/nta.toml (the [dns] part is
# the lab's, as in $NTA_CONFIG)
nta_daemon_config() {
    local policy=$1 extra=${2:-} audit="" inbound=""
    NTA_DAEMON_CONFIG="$LAB/nta.toml"
    if [ -n "$PF_AUDIT_FILE" ]; then
        mkdir -p "$(dirname "$PF_AUDIT_FILE")"
        audit=$(printf '\n[audit]\nfile = "%s"\n' "$PF_AUDIT_FILE")
    fi
    [ -z "$PF_INBOUND" ] || inbound=$(printf '\n[inbound]\n%s\n' "$PF_INBOUND")
    local server
    if [ "$PF_SOCKETS" = unix ]; then
        server=$(printf 'milter = "unix:%s/milter.sock"\nmap = "unix:%s/map.sock"\nsocket_group = "postfix"' "$(pf_sockdir)" "$(pf_sockdir)")
    else
        server=$(printf 'milter = "inet:%s:7516"\nmap = "inet:%s:7517"' "$PF_INT" "$PF_INT")
    fi
    nta_write_config "$NTA_DAEMON_CONFIG.new" "$E2E_RESOLVER_ADDR" "$(
        cat <<EOF
[server]
$server

[domains]
own = ["sender.lab.test"]

[outbound]
networks = ["$PF_INT/32", "127.0.0.1/32"]
$PF_OUTBOUND

[policy]
non_compliant = "$policy"
fallback_relay = "[fallback.lab.test]:25"
$PF_POLICY

[[dkim]]
domain = "sender.lab.test"
selector = "$PF_DKIM_SELECTOR"
key = "$LAB/dkim/sender.pem"

[footer]
text = "NTA7516-E2E-FOOTER plain: sent securely."
html = "<p class=\"e2e\">NTA7516-E2E-FOOTER html: sent securely.</p>"
$audit
$inbound
$extra
EOF
    )"
    "$NTA_BIN" check-config "$NTA_DAEMON_CONFIG.new" >"$LAB/log/nta-check-config.out" 2>&1 ||
        e2e_die "the daemon's lab config does not check: $(cat "$LAB/log/nta-check-config.out")"
    mv "$NTA_DAEMON_CONFIG.new" "$NTA_DAEMON_CONFIG"
}

# nta_daemon_up : both sockets accept connections (unix mode: both socket files exist)
nta_daemon_up() {
    if [ "$PF_SOCKETS" = unix ]; then
        [ -S "$(pf_sockdir)/milter.sock" ] && [ -S "$(pf_sockdir)/map.sock" ]
    else
        ip netns exec "$NETNS" timeout 2 bash -c "exec 3<>/dev/tcp/$PF_INT/7516 && exec 4<>/dev/tcp/$PF_INT/7517" 2>/dev/null
    fi
}

nta_daemon_start() {
    lab_bg nta-daemon "$NTA_BIN" serve --config "$NTA_DAEMON_CONFIG"
    wait_for "the daemon listens ($PF_SOCKETS)" 100 0.1 nta_daemon_up ||
        e2e_die "the daemon does not listen (see $LAB/log/nta-daemon.out)"
}

# nta_daemon_stop : SIGTERM (graceful stop), wait until it is gone
nta_daemon_stop() {
    lab_stop nta-daemon
    [ "$PF_SOCKETS" = unix ] && return 0
    wait_for "the daemon's sockets are closed" 50 0.1 sh -c "! ip netns exec '$NETNS' timeout 2 bash -c 'exec 3<>/dev/tcp/$PF_INT/7517' 2>/dev/null" ||
        e2e_die "the daemon still listens after stop"
}

# nta_daemon_reloads : how many reloads the daemon has logged so far. Only the daemon's
# own "configuration reloaded generation=N" line: the audit trail's journal copy of the
# event ("audit: configuration reloaded event=...") says the same words.
NTA_RELOAD_LINE='configuration reloaded generation='
nta_daemon_reloads() { grep -c "$NTA_RELOAD_LINE" "$LAB/log/nta-daemon.out" 2>/dev/null || true; }

# nta_daemon_reload : SIGHUP, and wait until the daemon logs one more reload
nta_daemon_reload() {
    local before pid
    before=$(nta_daemon_reloads)
    pid=$(cat "$LAB/pids/nta-daemon.pid")
    kill -HUP "$pid"
    wait_for "the daemon logs reload number $((before + 1))" 50 0.1 \
        sh -c "[ \"\$(grep -c '$NTA_RELOAD_LINE' '$LAB/log/nta-daemon.out')\" -gt $before ]" ||
        e2e_die "the daemon did not reload (see $LAB/log/nta-daemon.out)"
}

# nta_policy NON_COMPLIANT [EXTRA_TOML] : rewrite the config and reload it (SIGHUP)
nta_policy() {
    nta_daemon_config "$@"
    nta_daemon_reload
}

# ---------------------------------------------------------------------------------------
# The whole mail lab

# pf_lab_up [NON_COMPLIANT] : daemon (default policy: fallback) + receivers + pfa; sets
# an EXIT trap that stops them again (lab_down in run.sh is the backstop)
pf_lab_up() {
    local policy=${1:-fallback} n
    mkdir -p "$LAB/pf"
    # the "external" client's address (not in [outbound] networks)
    run_in_lab ip addr replace "$PF_EXT/32" dev lo
    run_in_lab ip addr replace "$PF_SPOOF/32" dev lo
    mkdir -p "$LAB/audit"
    printf '%s\n' "${E2E_CASE:-case}" >>"$LAB/audit/cases"
    pf_tls_ca
    pf_dkim_key
    trap pf_lab_down EXIT
    # each case file starts with fresh Postfix logs (queue ids repeat across instances):
    # earlier ones are kept as <name>.maillog.before-<this case>.<ns>
    for n in pfa pfb pfc pfd; do
        [ ! -f "$(pf_log "$n")" ] || mv "$(pf_log "$n")" "$(pf_log "$n").before-${E2E_CASE:-case}.$(date +%s%N)"
    done
    pf_setup pfb 127.0.10.25 mx.nta.lab.test tls
    pf_setup pfc 127.0.10.26 mx.notlsa.lab.test plain
    pf_setup pfd 127.0.10.27 fallback.lab.test fallback
    pf_setup pfa "$PF_INT" pfa.sender.lab.test sender
    if [ "$PF_SOCKETS" = unix ]; then
        # postfix/README.md: install -d -m 750 -g postfix .../nta7516-milter
        install -d -m 750 -g postfix "$(pf_sockdir)"
    fi
    nta_daemon_config "$policy"
    nta_daemon_start
    pf_start pfb
    pf_start pfc
    pf_start pfd
    pf_start pfa
}

pf_lab_down() {
    local n
    set +e
    for n in pfa pfb pfc pfd; do pf_stop "$n"; done
    lab_stop nta-daemon
}

# ---------------------------------------------------------------------------------------
# Sending and looking

# pf_token : a unique word to find one message by (Subject, body, recipient local part);
# nanoseconds, since it runs in a command substitution (no shared counter)
pf_token() { printf 'tok%s\n' "$(date +%s%N)"; }

# pf_send int|ext|spoof TOKEN SWAKS_ARGS... : swaks from the internal (127.0.10.1), external
# (127.0.10.98) or spoofing (127.0.10.97) client to pfa (envelope sender $PF_FROM, default
# sender@sender.lab.test); output in
# $LAB/out/swaks-TOKEN.out ($PF_OUT); sets PF_QID (queue id or empty); returns swaks' exit
# status (0: accepted; 23 MAIL, 24 RCPT, 25 DATA, 26 end of data refused)
pf_send() {
    local who=$1 token=$2 from rc=0
    shift 2
    case "$who" in
    int) from=$PF_INT ;;
    ext) from=$PF_EXT ;;
    spoof) from=$PF_SPOOF ;;
    *) e2e_die "pf_send: int, ext or spoof, not $who" ;;
    esac
    PF_OUT="$LAB/out/swaks-$token.out"
    run_in_lab_resolv timeout 60 swaks --server "$PF_INT:25" --local-interface "$from" \
        --helo "client.lab.test" --from "${PF_FROM:-sender@sender.lab.test}" \
        --header "Subject: e2e $token" --body "e2e message $token" \
        --timeout 30 "$@" >"$PF_OUT" 2>&1 || rc=$?
    PF_QID=$(sed -n 's/^<[~-]* *250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$PF_OUT" | tail -n 1)
    return "$rc"
}

# pf_files NAME TOKEN [RCPT] : the files in NAME's maildir with TOKEN (and delivered to RCPT)
pf_files() {
    local f
    for f in "$(pf_mail "$1")"/inbox/new/*; do
        [ -f "$f" ] || continue
        grep -qF -- "$2" "$f" || continue
        [ -z "${3:-}" ] || grep -qixF -- "Delivered-To: $3" "$f" || continue
        printf '%s\n' "$f"
    done
}

# pf_accepted DESC int|ext TOKEN SWAKS_ARGS... : pf_send, asserting that pfa queued it
# (sets PF_QID and PF_OUT in this shell)
pf_accepted() {
    local desc=$1 rc=0
    shift
    pf_send "$@" || rc=$?
    if [ "$rc" -eq 0 ] && [ -n "$PF_QID" ]; then
        e2e_pass "$desc"
    else
        e2e_fail "$desc: swaks exited $rc, queue id '${PF_QID}'" "$(grep -E '^(<|\*\*\*)' "$PF_OUT" | tail -n 8)"
        return 1
    fi
}

# pf_sendmail TOKEN RCPT : a local submission to pfa (sendmail -C; pickup, non_smtpd_milters)
pf_sendmail() {
    printf 'From: sender@sender.lab.test\nTo: %s\nSubject: e2e %s\n\nlocal submission %s\n' "$2" "$1" "$1" |
        run_in_lab_resolv sendmail -C "$(pf_etc pfa)" -f sender@sender.lab.test "$2"
}

# pf_find NAME TOKEN [RCPT] : the first such file (exit 1 if none)
# (sed reads to the end: with several matches, head would end pf_files with SIGPIPE,
# which pipefail turns into a failure)
pf_find() { pf_files "$@" | sed -n 1p | grep .; }

# pf_wait_mail NAME TOKEN [RCPT] : wait (max 15 s) until NAME delivered TOKEN; sets PF_FILE
# shellcheck disable=SC2034 # PF_FILE is read by the case files
pf_wait_mail() {
    PF_FILE=""
    if wait_for "$1 receives $2" 75 0.2 pf_find "$@"; then
        PF_FILE=$(pf_find "$@")
        return 0
    fi
    return 1
}

# pf_count NAME TOKEN [RCPT] : how many such files
pf_count() { pf_files "$@" | wc -l; }

# pf_logline NAME REGEX : the matching lines of NAME's log (empty if none)
pf_logline() { grep -E -- "$2" "$(pf_log "$1")" 2>/dev/null || true; }

# pf_wait_log NAME REGEX [TRIES] : wait (0.2 s steps, default 75) until NAME's log matches
pf_wait_log() {
    wait_for "$1 logs /$2/" "${3:-75}" 0.2 grep -Eq -- "$2" "$(pf_log "$1")"
}

# pf_queue NAME : postqueue -j (one JSON object per queued message)
pf_queue() { run_in_lab postqueue -c "$(pf_etc "$1")" -j 2>/dev/null || true; }

# pf_queued NAME QID : the queue ($queue_name) QID is in, or nothing
pf_queued() { pf_queue "$1" | jq -r --arg q "$2" 'select(.queue_id == $q) | .queue_name'; }

# pf_flush NAME : postqueue -f
pf_flush() { run_in_lab postqueue -c "$(pf_etc "$1")" -f; }

# pf_delete NAME QID : postsuper -d
pf_delete() { run_in_lab postsuper -c "$(pf_etc "$1")" -d "$2" >/dev/null 2>&1 || true; }

# pf_hdr FILE NAME : the values of header NAME in a delivered message (one per line,
# unfolded), through python3's email module
pf_hdr() {
    python3 "$E2E_DIR/py/header_values.py" "$1" "$2"
}

# pf_dump_logs : the tails of the Postfix logs (for failures)
pf_dump_logs() {
    local n f
    for n in pfa pfb pfc pfd; do
        f=$(pf_log "$n")
        [ -s "$f" ] || continue
        printf -- '--- tail of %s\n' "$f"
        tail -n 30 "$f"
    done
}

# ---------------------------------------------------------------------------------------
# Assertions on Postfix evidence (each waits a bounded time for the evidence to appear)

# pf_assert_log DESC NAME REGEX [TRIES] : NAME's log matches REGEX (waits up to TRIES x 0.2 s)
pf_assert_log() {
    local desc=$1 name=$2 re=$3 tries=${4:-75}
    if pf_wait_log "$name" "$re" "$tries"; then
        e2e_pass "$desc"
    else
        e2e_fail "$desc: $(pf_log "$name") has no line matching /$re/" "$(tail -n 15 "$(pf_log "$name")" 2>/dev/null)"
        return 1
    fi
}

# pf_assert_nolog DESC NAME REGEX : NAME's log has no line matching REGEX (now)
pf_assert_nolog() {
    local lines
    lines=$(pf_logline "$2" "$3")
    if [ -z "$lines" ]; then
        e2e_pass "$1"
    else
        e2e_fail "$1: $(pf_log "$2") has lines matching /$3/" "$lines"
        return 1
    fi
}

# pf_assert_mail DESC NAME TOKEN [RCPT] : NAME delivered a message with TOKEN (to RCPT) into
# its maildir (waits up to 15 s); sets PF_FILE
pf_assert_mail() {
    local desc=$1
    shift
    if pf_wait_mail "$@"; then
        e2e_pass "$desc"
    else
        e2e_fail "$desc: no message with $2${3:+ for $3} in $(pf_mail "$1")/inbox/new" \
            "$(tail -n 10 "$(pf_log "$1")" 2>/dev/null)"
        return 1
    fi
}

# pf_assert_count DESC WANT NAME TOKEN [RCPT] : NAME delivered exactly WANT such messages
pf_assert_count() {
    local desc=$1 want=$2
    shift 2
    assert_eq "$desc" "$want" "$(pf_count "$@")"
}

# pf_assert_sent DESC QID RCPT TRANSPORT [RELAY_REGEX] : pfa's log has QID's "status=sent"
# line for RCPT, logged by postfix/TRANSPORT/smtp (or postfix/smtp for "smtp")
pf_assert_sent() {
    local tag="postfix/$4/smtp"
    [ "$4" = smtp ] && tag=postfix/smtp
    pf_assert_log "$1" pfa "$tag\\[[0-9]+\\]: $2: to=<$3>, relay=${5:-[^,]*}, .*status=sent"
}

# pf_dkimverify FILE : python3-dkim's dkimverify on a delivered message, in the lab (the
# key record is looked up through Unbound); prints its verdict
pf_dkimverify() { run_in_lab_resolv timeout 20 dkimverify <"$1" 2>&1; }

# ---------------------------------------------------------------------------------------
# Faults (case file 70-chaos)

# nta_daemon_kill : SIGKILL the daemon (no graceful stop: no shutdown line, no final
# sync) and wait until its sockets are closed; sets NTA_KILLED_PID
nta_daemon_kill() {
    local pidfile="$LAB/pids/nta-daemon.pid" pid
    pid=$(cat "$pidfile" 2>/dev/null) || e2e_die "nta_daemon_kill: the daemon was not started"
    [ "$(ip netns identify "$pid" 2>/dev/null)" = "$NETNS" ] || e2e_die "nta_daemon_kill: pid $pid is not the lab's daemon"
    # no "Killed" job notice from bash (lab_bg started it as a job of this shell)
    disown "$pid" 2>/dev/null || true
    kill -KILL "$pid"
    rm -f "$pidfile"
    # the kernel closes the sockets when the process dies (before it is reaped)
    wait_for "the killed daemon's sockets are closed" 50 0.1 sh -c "! ip netns exec '$NETNS' timeout 2 bash -c 'exec 3<>/dev/tcp/$PF_INT/7517' 2>/dev/null" ||
        e2e_die "the daemon still listens after SIGKILL"
    NTA_KILLED_PID=$pid
}

# pf_refuse_rcpt NAME PCRE REPLY PROBE : receiver NAME refuses recipients matching PCRE at
# RCPT with REPLY (e.g. "550 5.1.1 no such mailbox"), through check_recipient_access;
# reloads NAME and waits until a new session refuses the address PROBE
pf_refuse_rcpt() {
    local name=$1 re=$2 reply=$3 probe=$4 d addr
    d=$(pf_etc "$name")
    addr=$(sed -n 's/^inet_interfaces = //p' "$d/main.cf")
    printf '/%s/ %s\n' "$re" "$reply" >"$d/refuse_rcpt.pcre"
    postconf -c "$d" -e "smtpd_recipient_restrictions = check_recipient_access pcre:$d/refuse_rcpt.pcre" ||
        e2e_die "pf_refuse_rcpt: postconf failed for $name"
    postfix_ "$name" reload >/dev/null 2>&1 || e2e_die "pf_refuse_rcpt: postfix $name reload failed"
    # swaks exits 24 when the server refuses the recipient
    wait_for "$name refuses <$probe>" 25 0.2 sh -c \
        "ip netns exec '$NETNS' timeout 10 swaks --server '$addr:25' --from probe@sender.lab.test --to '$probe' --quit-after RCPT --timeout 5 >/dev/null 2>&1; [ \$? -eq 24 ]" ||
        e2e_die "pf_refuse_rcpt: $name does not refuse <$probe>"
}
