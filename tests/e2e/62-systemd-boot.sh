#!/usr/bin/env bash
# 62-systemd-boot: the .deb under systemd as PID 1.
#
# A minimal Debian 12 root (debootstrap --variant=minbase with systemd, from Debian's
# archive; no ca-certificates, no Postfix) boots with systemd-nspawn -b in a private
# network namespace (loopback only; the package's Depends are in the root, as apt would
# install them). The package built from the binary under test is
# installed there with dpkg, and then:
#   start    postinst enables and starts the unit; Type=notify reaches "active" (READY=1)
#   journal  the daemon's entries carry structured fields (EVENT, GENERATION, ...)
#   reload   `systemctl reload` runs check-config, then SIGHUP: a new generation, same PID
#   restart  SIGKILL of the main process: systemd restarts it (Restart=on-failure)
#   security `systemd-analyze security` of the running unit, as packaging/README.md says
#   stop     `systemctl stop` ends it cleanly (the audit log records the shutdown)
#   portal   nta7516-portal.service with a [portal] section: started by hand (the package
#            does not enable it), Type=notify, its own user, config and keys as
#            credentials only; a message over LMTP is stored in its StateDirectory, audited
#            in its LogsDirectory, and its notification and receipt reach the root's
#            Postfix queue through the real sendmail/postdrop inside the sandbox; a page
#            answers; `systemd-analyze security`; stop; its audit chain verifies
# The root has Postfix (Debian's, not started by the milter's tests: the portal's sendmail
# is what needs it).
# Set NTA_E2E_BOOT_ROOT to a directory with such a root to skip the debootstrap (~1 min).
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
ROOT=${NTA_E2E_BOOT_ROOT:-$LAB/boot-root}
PKG="$LAB/packaging"
NSPAWN_PID=""
INIT_PID=""

cleanup() {
    set +e
    if [ -n "$INIT_PID" ]; then
        timeout 20 nsenter -t "$INIT_PID" -a systemctl poweroff >/dev/null 2>&1
    fi
    if [ -n "$NSPAWN_PID" ]; then
        for _ in $(seq 1 40); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null
    fi
    [ -n "${NTA_E2E_BOOT_ROOT:-}" ] || rm -rf "$ROOT"
}
trap cleanup EXIT

# in_box CMD... : run CMD inside the booted container (all its namespaces)
in_box() { timeout 60 nsenter -t "$INIT_PID" -a "$@"; }

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

# --- the root and the package ----------------------------------------------------------
if [ ! -x "$ROOT/sbin/init" ]; then
    t=$SECONDS
    if ! out=$(timeout 900 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser,procps,postfix \
        bookworm "$ROOT" http://deb.debian.org/debian 2>&1); then
        e2e_fail "debootstrap of a Debian 12 root failed" "$(printf '%s\n' "$out" | tail -n 15)"
        exit 1
    fi
    e2e_pass "debootstrap: a minimal Debian 12 root with systemd in $((SECONDS - t))s"
fi
debs=("$PKG"/nta7516-milter_*.deb)
if [ ! -e "${debs[0]}" ]; then
    mkdir -p "$PKG"
    if ! out=$("$E2E_REPO/packaging/build-packages.sh" --binary "$NTA_BIN" --fast --deb-only \
        --install-tools --out "$PKG" 2>&1); then
        e2e_fail "packaging/build-packages.sh --deb-only failed" "$(printf '%s\n' "$out" | tail -n 25)"
        exit 1
    fi
    debs=("$PKG"/nta7516-milter_*.deb)
fi
cp "${debs[0]}" "$ROOT/root/nta7516-milter.deb"
assert_true "the root has no CA store (as a minimal install may not)" test ! -e "$ROOT/etc/ssl/certs/ca-certificates.crt"

# --- boot ------------------------------------------------------------------------------
systemd-nspawn -D "$ROOT" -b --register=no --keep-unit --private-network \
    --console=pipe >"$LAB/log/nspawn.out" 2>&1 </dev/null &
NSPAWN_PID=$!
# the container's PID 1: nspawn's child in a PID namespace of its own
find_init() {
    local p
    for p in $(pgrep -P "$NSPAWN_PID"); do
        if [ "$(readlink "/proc/$p/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]; then
            INIT_PID=$p
            return 0
        fi
    done
    return 1
}
booted() { find_init && in_box systemctl is-system-running 2>/dev/null | grep -qE '^(running|degraded)$'; }
# wait_for runs its command in a subshell: find PID 1 again in this one
if wait_for "systemd in the container is up" 120 0.5 booted && find_init; then
    e2e_pass "systemd-nspawn -b: systemd runs as PID 1 ($(in_box systemctl is-system-running))"
else
    e2e_fail "the container did not boot" "$(tail -n 20 "$LAB/log/nspawn.out")"
    exit 1
fi
assert_eq "PID 1 in the container is systemd" systemd "$(in_box cat /proc/1/comm)"

# --- install and start -----------------------------------------------------------------
out=$(in_box dpkg -i /root/nta7516-milter.deb 2>&1)
assert_true "dpkg -i under systemd" in_box dpkg-query -W nta7516-milter
active() { [ "$(in_box systemctl is-active nta7516-milter 2>&1)" = active ]; }
if wait_for "the unit is active" 60 0.5 active; then
    e2e_pass "postinst started the unit and it reached active (Type=notify: READY=1 sent)"
else
    e2e_fail "the unit did not become active" "$out
$(in_box journalctl -u nta7516-milter --no-pager -n 20 2>&1)"
    exit 1
fi
assert_eq "the unit is enabled" enabled "$(in_box systemctl is-enabled nta7516-milter 2>&1)"
assert_eq "Type=notify" notify "$(in_box systemctl show -P Type nta7516-milter)"
pid1=$(in_box systemctl show -P MainPID nta7516-milter)
assert_eq "runs as the service user" nta7516-milter "$(in_box stat -c %U "/proc/$pid1")"
journal=$(in_box journalctl -t nta7516-milter -o json --no-pager 2>&1)
assert_match "journal: structured EVENT field (config_loaded)" '"EVENT":"config_loaded"' "$journal"
assert_match "journal: structured GENERATION field" '"GENERATION":"0"' "$journal"

# --- reload ----------------------------------------------------------------------------
assert_true "systemctl reload" in_box systemctl reload nta7516-milter
# journald keeps the event's fields apart from the message text
reloaded() { in_box journalctl -t nta7516-milter -o json --no-pager 2>/dev/null | grep '"EVENT":"config_reloaded"' | grep -q '"GENERATION":"1"'; }
if wait_for "reload logged" 40 0.5 reloaded; then e2e_pass "reload: EVENT=config_reloaded GENERATION=1 in the journal"; else
    e2e_fail "reload: no config_reloaded event with GENERATION=1" "$(in_box journalctl -u nta7516-milter --no-pager -n 15 2>&1)"
fi
assert_eq "reload: same main process" "$pid1" "$(in_box systemctl show -P MainPID nta7516-milter)"

# --- SIGKILL: restarted ----------------------------------------------------------------
in_box /bin/sh -c "kill -KILL $pid1"
restarted() {
    local p
    p=$(in_box systemctl show -P MainPID nta7516-milter)
    [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$pid1" ] && active
}
if wait_for "restart after SIGKILL" 80 0.5 restarted; then
    e2e_pass "SIGKILL: systemd restarted the daemon (RestartSec=5s), active again"
else
    e2e_fail "SIGKILL: not restarted" "$(in_box journalctl -u nta7516-milter --no-pager -n 15 2>&1)"
fi
assert_eq "SIGKILL: NRestarts = 1" 1 "$(in_box systemctl show -P NRestarts nta7516-milter)"

# --- security and stop -----------------------------------------------------------------
unit_secure_stop nta7516-milter ""
assert_match "stop: the audit log records the shutdown" '"event_type":"shutdown"' \
    "$(in_box cat /var/log/nta7516-milter/audit.log 2>&1)"
assert_true "audit verify inside the container" in_box /usr/sbin/nta7516-milter audit verify /var/log/nta7516-milter/audit.log

# --- the portal's unit ------------------------------------------------------------------
assert_eq "portal: the package does not enable nta7516-portal" disabled "$(in_box systemctl is-enabled nta7516-portal 2>&1)"
assert_true "portal: postinst put its user in group postdrop" sh -c "timeout 20 nsenter -t $INIT_PID -a id -nG nta7516-portal | grep -qw postdrop"
# the [portal] section and what the package leaves to the administrator: an own domain
# with its DKIM key, the SMS gateway's token
in_box /usr/sbin/nta7516-milter dkim-keygen --domain zkh.example --selector box >/dev/null 2>&1
in_box sh -c 'umask 077 && printf "box-token\n" >/etc/nta7516-milter/sms.token'
in_box sed -i 's/^own = \[\]/own = ["zkh.example"]/' /etc/nta7516-milter/config.toml
in_box sh -c 'cat >>/etc/nta7516-milter/config.toml' <<'EOT'

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

[portal.sms]
provider = "webhook"
url = "http://127.0.0.1:9/sms"
token_file = "/etc/nta7516-milter/sms.token"
EOT
assert_true "portal: check-config accepts the configuration" in_box /usr/sbin/nta7516-milter check-config /etc/nta7516-milter/config.toml
assert_true "portal: the service user cannot read the master key itself (root only)" \
    sh -c "! timeout 20 nsenter -t $INIT_PID -a runuser -u nta7516-portal -- cat /etc/nta7516-milter/portal.key >/dev/null 2>&1"
assert_true "portal: systemctl start nta7516-portal" in_box systemctl start nta7516-portal
portal_active() { [ "$(in_box systemctl is-active nta7516-portal 2>&1)" = active ]; }
if wait_for "the portal unit is active" 60 0.5 portal_active; then
    e2e_pass "portal: the unit reached active (Type=notify: READY=1 sent)"
else
    e2e_fail "portal: the unit did not become active" "$(in_box journalctl -u nta7516-portal --no-pager -n 25 2>&1)"
    exit 1
fi
ppid=$(in_box systemctl show -P MainPID nta7516-portal)
assert_eq "portal: runs as its own user" nta7516-portal "$(in_box stat -c %U "/proc/$ppid")"
assert_match "portal: its configuration comes from the credentials directory" \
    'portal --config /run/credentials/nta7516-portal.service/config.toml' "$(in_box cat "/proc/$ppid/cmdline" | tr '\0' ' ')"

# one message over LMTP (RFC 2033) from the container's loopback (the host's python3 in
# the container's network namespace only), with the number as a subject tag
lmtp=$(timeout 60 nsenter -t "$INIT_PID" -n python3 -c '
import smtplib
s = smtplib.LMTP("127.0.0.1", 7524, timeout=20)
msg = (b"From: Dokter <arts@zkh.example>\r\nTo: <patient@patient.example>\r\n"
       b"Subject: [sms:+31612345678] uitslag\r\nMessage-ID: <box-1@zkh.example>\r\n"
       b"Date: Thu, 03 Dec 2026 12:00:00 +0000\r\n\r\nDe uitslag is goed.\r\n")
s.ehlo("box.test")  # LMTP: sends LHLO
s.mail("arts@zkh.example")
s.rcpt("patient@patient.example")
code, resp = s.data(msg)
print(code, resp.decode())
s.quit()
' 2>&1)
assert_match "portal: LMTP stores the message (250)" '^250 2\.0\.0 ' "$lmtp"
assert_eq "portal: the store is in its StateDirectory, owned by its user" nta7516-portal \
    "$(in_box stat -c %U /var/lib/nta7516-portal/portal.db 2>&1)"
stored() { in_box grep -q '"event_type":"portal_stored"' /var/log/nta7516-portal/audit.log; }
wait_for "portal_stored in the portal's audit log" 40 0.5 stored &&
    e2e_pass "portal: portal_stored in /var/log/nta7516-portal/audit.log (its LogsDirectory)" ||
    e2e_fail "portal: no portal_stored event" "$(in_box journalctl -u nta7516-portal --no-pager -n 20 2>&1)"
# the notification and the receipt: through /usr/sbin/sendmail (postdrop, group postdrop
# under NoNewPrivileges) into Postfix's queue, where they wait (the box has no network)
notified() { in_box grep -q '"event_type":"portal_receipt_sent"' /var/log/nta7516-portal/audit.log; }
if wait_for "the portal's notification and receipt are handed to sendmail" 60 0.5 notified; then
    e2e_pass "portal: notification and receipt handed to sendmail inside the sandbox"
else
    e2e_fail "portal: no portal_receipt_sent event" "$(in_box grep -E 'notif|receipt' /var/log/nta7516-portal/audit.log 2>&1 | tail -n 4)
$(in_box journalctl -u nta7516-portal --no-pager -n 20 2>&1)"
fi
queued() { in_box postqueue -j 2>/dev/null | grep -c '"sender": *"portaal@zkh.example"' | grep -qx 2; }
if wait_for "two messages from portaal@zkh.example in Postfix's queue" 60 0.5 queued; then
    e2e_pass "portal: Postfix queued the notification (to the patient) and the receipt (to the sender)"
else
    e2e_fail "portal: the portal's mail is not in Postfix's queue" "$(in_box postqueue -j 2>&1 | head -n 5)"
fi
assert_match "portal: the notification goes to the recipient" '"address": *"patient@patient.example"' "$(in_box postqueue -j 2>&1)"
page=$(timeout 30 nsenter -t "$INIT_PID" -n python3 -c '
import urllib.request
r = urllib.request.urlopen("http://127.0.0.1:7580/toegankelijkheid", timeout=10)
print(r.status)' 2>&1)
assert_eq "portal: the web side answers (accessibility statement)" 200 "$page"
unit_secure_stop nta7516-portal "portal: "
assert_true "portal: its audit chain verifies" in_box /usr/sbin/nta7516-milter audit verify /var/log/nta7516-portal/audit.log
