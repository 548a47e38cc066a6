# shellcheck shell=bash
# tests/e2e/lib-boot.sh: a minimal Debian 12 root booted with systemd as PID 1
# (systemd-nspawn -b --private-network: loopback only), for the case files that run the
# packaged units (62 with Postfix, 63 with Exim). Sourced after lib.sh and e2e_case_init:
#     boot_root ROOT PACKAGES    # debootstrap --variant=minbase with systemd and PACKAGES
#     boot_deb ROOT              # the .deb of the binary under test, in ROOT/root/
#     boot_up ROOT || exit 1     # boots it; INIT_PID is the container's PID 1; EXIT trap
#     in_box CMD...              # runs CMD inside (all its namespaces)
#     boot_install || exit 1     # dpkg -i, postinst starts nta7516-milter.service
# A case file sets BOOT_KEEP=1 to keep a root it was given (NTA_E2E_BOOT_ROOT and the like).

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
BOOT_PKG="$LAB/packaging"
BOOT_ROOT=""
NSPAWN_PID=""
INIT_PID=""

boot_cleanup() {
    set +e
    if [ -n "$INIT_PID" ]; then
        timeout 20 nsenter -t "$INIT_PID" -a systemctl poweroff >/dev/null 2>&1
    fi
    if [ -n "$NSPAWN_PID" ]; then
        for _ in $(seq 1 40); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null
    fi
    [ "${BOOT_KEEP:-0}" = 1 ] || [ -z "$BOOT_ROOT" ] || rm -rf "$BOOT_ROOT"
}

# in_box CMD... : run CMD inside the booted container (all its namespaces)
in_box() { timeout 60 nsenter -t "$INIT_PID" -a "$@"; }

# in_box_net CMD... : run the host's CMD in the container's network namespace only
in_box_net() { timeout 60 nsenter -t "$INIT_PID" -n "$@"; }

# boot_root ROOT PACKAGES : the root (kept when it exists already)
boot_root() {
    local t out
    BOOT_ROOT=$1
    [ -x "$1/sbin/init" ] && return 0
    t=$SECONDS
    if ! out=$(timeout 900 debootstrap --variant=minbase \
        --include="systemd,systemd-sysv,dbus,adduser,procps,$2" \
        bookworm "$1" http://deb.debian.org/debian 2>&1); then
        e2e_fail "debootstrap of a Debian 12 root failed" "$(printf '%s\n' "$out" | tail -n 15)"
        return 1
    fi
    e2e_pass "debootstrap: a minimal Debian 12 root with systemd and $2 in $((SECONDS - t))s"
}

# boot_deb ROOT : builds the .deb once per lab and copies it to ROOT/root/nta7516-milter.deb
boot_deb() {
    local debs out
    debs=("$BOOT_PKG"/nta7516-milter_*.deb)
    if [ ! -e "${debs[0]}" ]; then
        mkdir -p "$BOOT_PKG"
        if ! out=$("$E2E_REPO/packaging/build-packages.sh" --binary "$NTA_BIN" --fast --deb-only \
            --install-tools --out "$BOOT_PKG" 2>&1); then
            e2e_fail "packaging/build-packages.sh --deb-only failed" "$(printf '%s\n' "$out" | tail -n 25)"
            return 1
        fi
        debs=("$BOOT_PKG"/nta7516-milter_*.deb)
    fi
    cp "${debs[0]}" "$1/root/nta7516-milter.deb"
}

# the container's PID 1: nspawn's child in a PID namespace of its own
boot_find_init() {
    local p
    for p in $(pgrep -P "$NSPAWN_PID"); do
        if [ "$(readlink "/proc/$p/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]; then
            INIT_PID=$p
            return 0
        fi
    done
    return 1
}
boot_booted() { boot_find_init && in_box systemctl is-system-running 2>/dev/null | grep -qE '^(running|degraded)$'; }

# boot_up ROOT : boots ROOT and waits for systemd (sets the EXIT trap)
boot_up() {
    trap boot_cleanup EXIT
    systemd-nspawn -D "$1" -b --register=no --keep-unit --private-network \
        --console=pipe >"$LAB/log/nspawn.out" 2>&1 </dev/null &
    NSPAWN_PID=$!
    # wait_for runs its command in a subshell: find PID 1 again in this one
    if wait_for "systemd in the container is up" 120 0.5 boot_booted && boot_find_init; then
        e2e_pass "systemd-nspawn -b: systemd runs as PID 1 ($(in_box systemctl is-system-running))"
    else
        e2e_fail "the container did not boot" "$(tail -n 20 "$LAB/log/nspawn.out")"
        return 1
    fi
    assert_eq "PID 1 in the container is systemd" systemd "$(in_box cat /proc/1/comm)"
}

boot_active() { [ "$(in_box systemctl is-active "$1" 2>&1)" = active ]; }

# boot_install : dpkg -i of the copied .deb; postinst enables and starts the daemon's unit
boot_install() {
    local out
    out=$(in_box dpkg -i /root/nta7516-milter.deb 2>&1)
    assert_true "dpkg -i under systemd" in_box dpkg-query -W nta7516-milter
    if wait_for "the unit is active" 60 0.5 boot_active nta7516-milter; then
        e2e_pass "postinst started the unit and it reached active (Type=notify: READY=1 sent)"
    else
        e2e_fail "the unit did not become active" "$out
$(in_box journalctl -u nta7516-milter --no-pager -n 20 2>&1)"
        return 1
    fi
}

# unit_secure_stop UNIT LABEL : `systemd-analyze security` of the running UNIT (at most
# 2.0, as packaging/README.md says), then `systemctl stop` leaves it inactive
unit_secure_stop() {
    local security level
    security=$(in_box systemd-analyze security --no-pager "$1.service" 2>&1)
    level=$(printf '%s\n' "$security" | sed -n "s/.*Overall exposure level for $1.service: \([0-9.]*\).*/\1/p")
    assert_true "${2}systemd-analyze security of the running unit: ${level:-?} <= 2.0 (packaging/README.md)" \
        awk -v l="${level:-99}" 'BEGIN { exit !(l <= 2.0) }'
    assert_true "${2}systemctl stop" in_box systemctl stop "$1"
    assert_eq "${2}stopped: inactive" inactive "$(in_box systemctl is-active "$1" 2>&1)"
}

# boot_portal_config SUBMIT_LINES : the daemon's package config gains an own domain with
# its DKIM key and the [portal] section (the SMS gateway's token too); SUBMIT_LINES say how
# the portal hands over its own mail
boot_portal_config() {
    in_box /usr/sbin/nta7516-milter dkim-keygen --domain zkh.example --selector box >/dev/null 2>&1
    # step 3 of what dkim-keygen prints: the daemon's user must read the key
    in_box chown nta7516-milter /etc/nta7516-milter/dkim/zkh.example.box.pem
    in_box sh -c 'umask 077 && printf "box-token\n" >/etc/nta7516-milter/sms.token'
    in_box sed -i 's/^own = \[\]/own = ["zkh.example"]/' /etc/nta7516-milter/config.toml
    in_box sh -c 'cat >>/etc/nta7516-milter/config.toml' <<EOT

[[dkim]]
domain = "zkh.example"
selector = "box"
key = "/etc/nta7516-milter/dkim/zkh.example.box.pem"

[portal]
listen = "inet:127.0.0.1:7580"
public_url = "http://127.0.0.1:7580"
lmtp = "inet:127.0.0.1:7524"
store = "sqlite:/var/lib/nta7516-portal/portal.db"
key_file = "/etc/nta7516-milter/portal.key"
from = "portaal@zkh.example"
mail_key = "/etc/nta7516-milter/portal-mail.key"
audit_file = "/var/log/nta7516-portal/audit.log"
$1

[portal.sms]
provider = "webhook"
url = "http://127.0.0.1:9/sms"
token_file = "/etc/nta7516-milter/sms.token"
EOT
}

# boot_portal_start : starts nta7516-portal.service (the package does not enable it) and
# checks its user and credentials; PORTAL_PID is its main process
boot_portal_start() {
    assert_true "portal: check-config accepts the configuration" in_box /usr/sbin/nta7516-milter check-config /etc/nta7516-milter/config.toml
    assert_true "portal: the service user cannot read the master key itself (root only)" \
        sh -c "! timeout 20 nsenter -t $INIT_PID -a runuser -u nta7516-portal -- cat /etc/nta7516-milter/portal.key >/dev/null 2>&1"
    assert_true "portal: systemctl start nta7516-portal" in_box systemctl start nta7516-portal
    if wait_for "the portal unit is active" 60 0.5 boot_active nta7516-portal; then
        e2e_pass "portal: the unit reached active (Type=notify: READY=1 sent)"
    else
        e2e_fail "portal: the unit did not become active" "$(in_box journalctl -u nta7516-portal --no-pager -n 25 2>&1)"
        return 1
    fi
    PORTAL_PID=$(in_box systemctl show -P MainPID nta7516-portal)
    assert_eq "portal: runs as its own user" nta7516-portal "$(in_box stat -c %U "/proc/$PORTAL_PID")"
    assert_match "portal: its configuration comes from the credentials directory" \
        'portal --config /run/credentials/nta7516-portal.service/config.toml' "$(in_box cat "/proc/$PORTAL_PID/cmdline" | tr '\0' ' ')"
}

# boot_portal_lmtp ID : one message over LMTP (RFC 2033) from the container's loopback
# (the host's python3 in the container's network namespace only), with the number as a
# subject tag; prints the server's final reply
boot_portal_lmtp() {
    in_box_net python3 - "$1" <<'PY' 2>&1
import smtplib, sys
s = smtplib.LMTP("127.0.0.1", 7524, timeout=20)
msg = (b"From: Dokter <arts@zkh.example>\r\nTo: <patient@patient.example>\r\n"
       b"Subject: [sms:+31612345678] uitslag\r\nMessage-ID: <" + sys.argv[1].encode() + b"@zkh.example>\r\n"
       b"Date: Thu, 03 Dec 2026 12:00:00 +0000\r\n\r\nDe uitslag is goed.\r\n")
s.ehlo("box.test")  # LMTP: sends LHLO
s.mail("arts@zkh.example")
s.rcpt("patient@patient.example")
code, resp = s.data(msg)
print(code, resp.decode())
s.quit()
PY
}

# boot_portal_stored_and_sent : the message is stored (StateDirectory, audit) and the
# portal handed its notification and receipt to the MTA (portal_receipt_sent)
boot_portal_stored_and_sent() {
    assert_eq "portal: the store is in its StateDirectory, owned by its user" nta7516-portal \
        "$(in_box stat -c %U /var/lib/nta7516-portal/portal.db 2>&1)"
    stored() { in_box grep -q '"event_type":"portal_stored"' /var/log/nta7516-portal/audit.log; }
    if wait_for "portal_stored in the portal's audit log" 40 0.5 stored; then
        e2e_pass "portal: portal_stored in /var/log/nta7516-portal/audit.log (its LogsDirectory)"
    else
        e2e_fail "portal: no portal_stored event" "$(in_box journalctl -u nta7516-portal --no-pager -n 20 2>&1)"
    fi
    notified() { in_box grep -q '"event_type":"portal_receipt_sent"' /var/log/nta7516-portal/audit.log; }
    if wait_for "the portal's notification and receipt are handed to the MTA" 60 0.5 notified; then
        e2e_pass "portal: notification and receipt handed to the MTA from inside the sandbox ($1)"
    else
        e2e_fail "portal: no portal_receipt_sent event ($1)" "$(in_box grep -E 'notif|receipt' /var/log/nta7516-portal/audit.log 2>&1 | tail -n 4)
$(in_box journalctl -u nta7516-portal --no-pager -n 20 2>&1)"
    fi
}

# boot_portal_page_stop : a page answers, security of the unit, stop, the audit chain
boot_portal_page_stop() {
    local page
    page=$(in_box_net python3 -c '
import urllib.request
r = urllib.request.urlopen("http://127.0.0.1:7580/toegankelijkheid", timeout=10)
print(r.status)' 2>&1)
    if [ "$page" = 200 ]; then
        e2e_pass "portal: the web side answers (accessibility statement)"
    else
        e2e_fail "portal: the web side does not answer (the unit is $(in_box systemctl is-active nta7516-portal 2>&1))" \
            "$(printf '%s\n' "$page" | tail -n 1)
$(in_box journalctl -u nta7516-portal --no-pager -n 15 -o verbose 2>&1 | grep -E '^ *(MESSAGE|ERROR)=' | tail -n 15)"
    fi
    unit_secure_stop nta7516-portal "portal: "
    assert_true "portal: its audit chain verifies" in_box /usr/sbin/nta7516-milter audit verify /var/log/nta7516-portal/audit.log
}
