#!/usr/bin/env bash
# 63-systemd-exim: the packaged units under systemd as PID 1 with Debian's Exim.
#
# A minimal Debian 12 root with exim4-daemon-heavy (debootstrap, as in 62; Exim and
# Postfix conflict, so this is a root of its own) boots with systemd-nspawn -b in a
# private network namespace (loopback only). The .deb under test is installed; Exim gets
# the shipped exim/ files from /usr/share/doc/nta7516-milter/exim the way exim/README.md
# says (split configuration, update-exim4.conf, Debian-exim in group nta7516-milter). Then:
#   portal   nta7516-portal.service, hardened (NoNewPrivileges: Exim's setuid sendmail
#            cannot work in it), submits by SMTP to Exim and logs in ([portal] submit,
#            submit_auth): a message over LMTP is stored, and its notification and receipt
#            are taken in by Exim from the logged-in portal (P=esmtpa
#            A=nta7516_portal:nta7516-portal, the password checked by the packaged daemon)
#            and routed by nta7516_standard, the ordinary way (the box has no network, so
#            they wait in Exim's queue)
#   abuse    the same mark by SMTP without the login (from a relay host) is not the
#            portal's mail: never nta7516_standard
#   no CAs   the root has no CA certificates: the portal says it cannot reach an https SMS
#            provider and its pages still answer (found: the web side did not start)
#   stop     `systemd-analyze security` of the portal unit, stop, its audit chain
# Set NTA_E2E_BOOT_ROOT_EXIM to a directory with such a root to skip the debootstrap.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-boot.sh
. "$E2E_DIR/lib-boot.sh"

ROOT=${NTA_E2E_BOOT_ROOT_EXIM:-$LAB/boot-root-exim}
[ -z "${NTA_E2E_BOOT_ROOT_EXIM:-}" ] || BOOT_KEEP=1
MAINLOG=/var/log/exim4/mainlog

boot_root "$ROOT" exim4-daemon-heavy || exit 1
boot_deb "$ROOT" || exit 1
# (62's root has Postfix's snakeoil certificate in /etc/ssl/certs; this one has nothing)
assert_true "the root has no CA certificates at all" test ! -e "$ROOT/etc/ssl/certs"
boot_up "$ROOT" || exit 1
boot_install || exit 1
assert_match "Exim 4.96 with DANE and DKIM in the box" '^Support for:.* DANE .*DKIM' "$(in_box exim4 -bV 2>&1)"

# --- Exim as exim/README.md says ----------------------------------------------------------
doc=/usr/share/doc/nta7516-milter/exim
in_box sh -ec "
adduser --quiet Debian-exim nta7516-milter
sed -i -e \"s/^dc_use_split_config=.*/dc_use_split_config='true'/\" \
    -e \"s/^dc_eximconfig_configtype=.*/dc_eximconfig_configtype='internet'/\" /etc/exim4/update-exim4.conf.conf
install -m 644 $doc/nta7516-milter.macros /etc/exim4/conf.d/main/00_nta7516-milter_macros
install -m 644 $doc/nta7516-milter.acl /etc/exim4/nta7516-milter.acl
install -m 644 $doc/nta7516-milter-not-smtp.acl /etc/exim4/nta7516-milter-not-smtp.acl
install -m 644 $doc/nta7516-milter.routers /etc/exim4/conf.d/router/190_nta7516-milter
install -m 644 $doc/nta7516-milter.transports /etc/exim4/conf.d/transport/30_nta7516-milter
install -m 644 $doc/nta7516-milter.authenticators /etc/exim4/conf.d/auth/30_nta7516-milter
update-exim4.conf
" >"$LAB/out/box-exim-setup.out" 2>&1
assert_eq "exim/README.md's install steps ran" 0 "$?"
assert_true "Exim's configuration with the shipped files parses (exim4 -bV)" in_box exim4 -bV
assert_true "systemctl restart exim4" in_box systemctl restart exim4
exim_up() { in_box_net bash -c 'exec 3<>/dev/tcp/127.0.0.1/25 && head -c 3 <&3 | grep -q 220'; }
wait_for "Exim answers on 127.0.0.1:25" 40 0.5 exim_up &&
    e2e_pass "Exim listens on 127.0.0.1:25" ||
    e2e_fail "Exim does not answer on 127.0.0.1:25" "$(in_box journalctl -u exim4 --no-pager -n 15 2>&1)"

# --- the daemon and the portal with the SMTP login ----------------------------------------
boot_portal_config "$(printf 'submit = "inet:127.0.0.1:25"\nsubmit_auth = true')"
# the daemon reads [portal] mail_key for the login check (map request portal-login)
if in_box systemctl restart nta7516-milter && wait_for "the daemon is active again" 60 0.5 boot_active nta7516-milter; then
    e2e_pass "the daemon restarted with the [portal] section"
else
    e2e_fail "the daemon does not restart with the [portal] section" "$(in_box journalctl -u nta7516-milter --no-pager -n 20 2>&1)"
fi
# shellcheck disable=SC2016 # Exim expansions, not shell
assert_eq "map server: a wrong login password is refused (portal-login)" "9:NOTFOUND ," \
    "$(in_box exim4 -be '${readsocket{inet:127.0.0.1:7517}{${strlen:portal-login x}:portal-login x,}{5s}{}{TEMP readsocket failed}}' 2>&1)"
boot_portal_start || exit 1
# without CA certificates the SMS client trusts nobody: said at start, the pages still work
journal_has() { in_box journalctl -u nta7516-portal --no-pager -o cat 2>/dev/null | grep -q "$1"; }
wait_for "the portal says it cannot reach an https SMS provider" 20 0.5 journal_has 'no codes can be sent until the system has CA certificates' &&
    e2e_pass "portal: without CA certificates it says so at start (and still serves its pages, below)" ||
    e2e_fail "portal: no word about the missing CA certificates" "$(in_box journalctl -u nta7516-portal --no-pager -n 15 2>&1)"
assert_match "portal: LMTP stores the message (250)" '^250 2\.0\.0 ' "$(boot_portal_lmtp box-exim-1)"
boot_portal_stored_and_sent "Exim by SMTP with the portal's login"
taken() { [ "$(in_box grep -Ec ' <= portaal@zkh\.example H=([^ ]+ )?\([^)]*\) \[127\.0\.0\.1\] P=esmtpa A=nta7516_portal:nta7516-portal ' "$MAINLOG" 2>/dev/null)" = 2 ]; }
if wait_for "Exim took two messages from the logged-in portal" 40 0.5 taken; then
    e2e_pass "portal: Exim took the notification and the receipt from the logged-in portal (A=nta7516_portal:nta7516-portal)"
else
    e2e_fail "portal: Exim has no two logged-in submissions from the portal" "$(in_box tail -n 15 "$MAINLOG" 2>&1)"
fi
routed() { in_box grep -Eq "patient@patient\.example R=nta7516_standard " "$MAINLOG"; }
if wait_for "the notification is routed by nta7516_standard" 40 0.5 routed; then
    e2e_pass "portal: the notification goes the ordinary way (R=nta7516_standard; no network here, so it waits)"
else
    e2e_fail "portal: the notification was not routed by nta7516_standard" "$(in_box tail -n 15 "$MAINLOG" 2>&1)"
fi
assert_match "portal: the portal's mail waits in Exim's queue" 'patient@patient\.example' "$(in_box exim4 -bp 2>&1)"

# --- the mark by SMTP without the login --------------------------------------------------
smtp=$(in_box_net python3 - <<'PY' 2>&1
import smtplib
s = smtplib.SMTP("127.0.0.1", 25, timeout=20)
s.ehlo("box.test")
msg = (b"From: <portaal@zkh.example>\r\nTo: <other@patient.example>\r\nSubject: x\r\n"
       b"Message-ID: <box-exim-2@zkh.example>\r\nX-NTA7516-Portal-Mark: v1 AAAA\r\n\r\nx\r\n")
print(s.sendmail("portaal@zkh.example", ["other@patient.example"], msg))
s.quit()
PY
)
assert_eq "no login: Exim takes the marked message from the relay host" "{}" "$smtp"
tried() { in_box grep -Eq "other@patient\.example R=" "$MAINLOG"; }
wait_for "a delivery attempt for other@patient.example" 40 0.5 tried || true
assert_match "no login: routed by a secure router (the daemon asked), not the ordinary way" \
    'other@patient\.example R=nta7516_(undecided|portal|defer|bounce) ' "$(in_box grep other@patient.example "$MAINLOG" 2>&1)"
assert_eq "no login: never nta7516_standard" 0 "$(in_box grep -c 'other@patient\.example R=nta7516_standard' "$MAINLOG")"

boot_portal_page_stop
