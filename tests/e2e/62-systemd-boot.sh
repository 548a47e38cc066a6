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
# is what needs it). The same with Exim: 63-systemd-exim.sh. Boot helpers: lib-boot.sh.
# Set NTA_E2E_BOOT_ROOT to a directory with such a root to skip the debootstrap (~1 min).
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-boot.sh
. "$E2E_DIR/lib-boot.sh"

ROOT=${NTA_E2E_BOOT_ROOT:-$LAB/boot-root}
[ -z "${NTA_E2E_BOOT_ROOT:-}" ] || BOOT_KEEP=1

# --- the root and the package ----------------------------------------------------------
boot_root "$ROOT" postfix || exit 1
boot_deb "$ROOT" || exit 1
assert_true "the root has no CA store (as a minimal install may not)" test ! -e "$ROOT/etc/ssl/certs/ca-certificates.crt"

# --- boot ------------------------------------------------------------------------------
boot_up "$ROOT" || exit 1

# --- install and start -----------------------------------------------------------------
boot_install || exit 1
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
    [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$pid1" ] && boot_active nta7516-milter
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
# with its DKIM key, the SMS gateway's token; the portal keeps the default sendmail
boot_portal_config ""
boot_portal_start || exit 1
assert_match "portal: LMTP stores the message (250)" '^250 2\.0\.0 ' "$(boot_portal_lmtp box-1)"
# the notification and the receipt: through /usr/sbin/sendmail (postdrop, group postdrop
# under NoNewPrivileges) into Postfix's queue, where they wait (the box has no network)
boot_portal_stored_and_sent "Postfix's sendmail and postdrop"
queued() { in_box postqueue -j 2>/dev/null | grep -c '"sender": *"portaal@zkh.example"' | grep -qx 2; }
if wait_for "two messages from portaal@zkh.example in Postfix's queue" 60 0.5 queued; then
    e2e_pass "portal: Postfix queued the notification (to the patient) and the receipt (to the sender)"
else
    e2e_fail "portal: the portal's mail is not in Postfix's queue" "$(in_box postqueue -j 2>&1 | head -n 5)"
fi
assert_match "portal: the notification goes to the recipient" '"address": *"patient@patient.example"' "$(in_box postqueue -j 2>&1)"
boot_portal_page_stop
