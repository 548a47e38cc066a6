#!/usr/bin/env bash
# 60-packaging-deb: the Debian package, built from the binary under test and installed on
# this machine with dpkg (no systemd as PID 1 needed).
#
#   static   packaged config generated from config/config.toml; man pages without groff
#            warnings and covering every config key and subcommand; maintainer scripts parse
#   build    packaging/build-packages.sh --binary $NTA_BIN --fast --deb-only (cargo-deb is
#            installed, pinned, when missing: ~2 min of compiling, once per machine)
#   install  dpkg -i: files, owners, modes, conffiles, the system user (in group postfix),
#            directories; systemd-analyze verify and security of the installed unit; the
#            installed binary's --version and check-config (as root, as the service user,
#            refused to others)
#   run      the installed binary as the service user on the packaged unix-socket variant:
#            sockets nta7516-milter:postfix 0660 in the spool dir, reachable by a process
#            with only group postfix (as Postfix's daemons run), not by others; SIGHUP,
#            the installed logrotate file (forced rotation), SIGHUP, SIGTERM, and
#            `audit verify` over the rotated and the new file
#   upgrade  reinstall over a locally modified conffile: kept, group and mode restored
#   portal   the portal's user (in group postdrop), its master and mail keys made once
#            (modes; unchanged by a reinstall and kept by purge, which says so), its unit
#            installed and not enabled: systemd-analyze verify and security, settings
#   remove   dpkg -r keeps the conffile; dpkg --purge removes binary, unit, config, state
#            and socket directories, and KEEPS /var/log/nta7516-milter and the user (NEN 7513)
#
# The package is global machine state: a lock serialises concurrent e2e runs, and the
# package, the audit directory (only if this test made it) and the user are removed at exit.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
PKG="$LAB/packaging"
mkdir -p "$PKG"
USER_NAME=nta7516-milter
LOGDIR=/var/log/nta7516-milter
SPOOL=/var/spool/postfix/nta7516-milter
MARKER="$LOGDIR/.e2e-packaging-test"
E2E_CONF=/etc/nta7516-milter/e2e-unix.toml
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$E2E_REPO/Cargo.toml" | head -n 1)

# stat_of PATH -> "user:group mode"
stat_of() { stat -c '%U:%G %a' "$1" 2>&1; }

# dpkg_ DPKG_ARGS... : dpkg, retried while another process holds the dpkg lock
dpkg_() {
    local i out rc
    for i in $(seq 1 60); do
        rc=0
        out=$(dpkg "$@" 2>&1) || rc=$?
        if [ "$rc" -ne 0 ] && printf '%s' "$out" | grep -qi 'lock'; then
            sleep 2
            continue
        fi
        printf '%s\n' "$out"
        return "$rc"
    done
    printf '%s\n' "$out"
    return 1
}

cleanup() {
    set +e
    if [ -f "$LAB/pids/pkg-daemon.pid" ]; then
        kill -TERM "$(cat "$LAB/pids/pkg-daemon.pid")" 2>/dev/null
        sleep 1
    fi
    rm -f "$E2E_CONF"
    if dpkg-query -W -f='${Status}' nta7516-milter 2>/dev/null | grep -q 'installed\|config-files'; then
        dpkg_ --purge nta7516-milter >/dev/null
    fi
    # purge keeps the portal's keys (as the test checks): this test made them
    rm -f /etc/nta7516-milter/portal.key /etc/nta7516-milter/portal-mail.key
    rmdir /etc/nta7516-milter 2>/dev/null
    if getent passwd nta7516-portal >/dev/null && [ -f "$PKG/created-portal-user" ]; then
        deluser --quiet --system nta7516-portal >/dev/null 2>&1
        getent group nta7516-portal >/dev/null && delgroup --quiet --system nta7516-portal >/dev/null 2>&1
    fi
    [ -f "$MARKER" ] && rm -rf "$LOGDIR"
    if getent passwd "$USER_NAME" >/dev/null && [ -f "$PKG/created-user" ]; then
        deluser --quiet --system "$USER_NAME" >/dev/null 2>&1
        getent group "$USER_NAME" >/dev/null && delgroup --quiet --system "$USER_NAME" >/dev/null 2>&1
    fi
}

# ---------------------------------------------------------------------------------------
# Static checks (no package tools needed)

assert_true "packaging/config.toml is config/config.toml with the audit log on (make-config.sh --check)" \
    "$E2E_REPO/packaging/make-config.sh" --check
assert_eq "packaged config: [audit] file enabled" 1 \
    "$(grep -c '^file = "/var/log/nta7516-milter/audit.log"$' "$E2E_REPO/packaging/config.toml")"
assert_eq "packaged config: listeners stay on the loopback defaults" \
    'milter = "inet:127.0.0.1:7516"|map = "inet:127.0.0.1:7517"' \
    "$(grep -E '^(milter|map) = ' "$E2E_REPO/packaging/config.toml" | paste -sd '|')"

for page in nta7516-milter.8 nta7516-milter.toml.5 nta7516-portal.8; do
    warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$E2E_REPO/packaging/man/$page" 2>&1)
    assert_eq "man page $page: no groff warnings (groff -man -ww)" "" "$warnings"
done

# every key of the sample config is documented in nta7516-milter.toml(5), in its section
toml5="$E2E_REPO/packaging/man/nta7516-milter.toml.5"
gaps=""
section=""
while IFS= read -r line; do
    line=${line#\# }
    case "$line" in
    '['*) section=$line ;;
    *)
        key=${line%% = *}
        # the section heading (.SH/.SS) must exist and the key must appear after it as a tag
        if ! awk -v sec="$section" -v key="$key" '
            /^\.S[HS] / { insec = (substr($0, 5) == sec) }
            insec && ($0 ~ "^\\.BR " key " " || $0 ~ "^\\.BR " key "$") { found = 1 }
            END { exit !found }' "$toml5"; then
            gaps="$gaps $section/$key"
        fi
        ;;
    esac
done < <(grep -E '^(# )?(\[|[a-z_]+ = )' "$E2E_REPO/config/config.toml")
assert_eq "nta7516-milter.toml(5) documents every key of config/config.toml under its section" "" "$gaps"
assert_eq "nta7516-milter.toml(5) says for every key whether reload applies" \
    "$(grep -c '^\.BR [a-z_]* "' "$toml5")" \
    "$(awk '/^\.BR [a-z_]* "/ { k = 1 } k && /Reload: (applies|restart needed)/ { n++; k = 0 } END { print n + 0 }' "$toml5")"

# every subcommand of --help has its own section in nta7516-milter(8)
man8="$E2E_REPO/packaging/man/nta7516-milter.8"
gaps=""
for sub in $("$NTA_BIN" --help | awk '/^Commands:/ { c = 1; next } c && /^  [a-z]/ { print $1 } /^$/ { c = 0 }'); do
    [ "$sub" = help ] && continue
    awk -v n="${sub//-/\\-}" '$1 == ".SS" && $2 == n { f = 1 } END { exit !f }' "$man8" ||
        gaps="$gaps $sub"
done
assert_eq "nta7516-milter(8) has a section for every subcommand of --help" "" "$gaps"
gaps=""
for sub in $("$NTA_BIN" --help | awk '/^Commands:/ { c = 1; next } c && /^  [a-z]/ { print $1 } /^$/ { c = 0 }'); do
    case "$sub" in help) continue ;; audit) sub="audit verify" ;; esac
    # shellcheck disable=SC2086 # "audit verify" is two words on purpose
    for opt in $("$NTA_BIN" $sub --help | grep -oE '^ +(-[a-zA-Z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+'); do
        [ "$opt" = --help ] && continue
        grep -qF -- "$(printf '%s' "$opt" | sed 's/-/\\-/g')" "$man8" || gaps="$gaps $sub:$opt"
    done
done
assert_eq "nta7516-milter(8) documents every option of every subcommand" "" "$gaps"

for s in postinst prerm postrm; do
    assert_true "maintainer script $s parses (sh -n)" sh -n "$E2E_REPO/packaging/debian/$s"
done
assert_true "tmpfiles.d snippet is valid and names no group that may not exist" \
    sh -c "grep -v '^#' '$E2E_REPO/packaging/tmpfiles/nta7516-milter.conf' | grep -q '^d $SPOOL 0750 $USER_NAME - -\$'"

# ---------------------------------------------------------------------------------------
# Build

exec 9>/run/lock/nta7516-e2e-packaging.lock
if ! flock -w 300 9; then
    e2e_fail "another e2e run holds /run/lock/nta7516-e2e-packaging.lock for more than 300 s"
    exit 1
fi
trap cleanup EXIT

t=$SECONDS
if ! out=$("$E2E_REPO/packaging/build-packages.sh" --binary "$NTA_BIN" --fast --deb-only \
    --install-tools --out "$PKG" 2>&1); then
    e2e_fail "packaging/build-packages.sh --deb-only failed" "$(printf '%s\n' "$out" | tail -n 25)"
    exit 1
fi
printf '%s\n' "$out" | grep -E '^\[packaging\] installed' || true
debs=("$PKG"/nta7516-milter_*.deb)
deb=${debs[0]}
[ -e "$deb" ] || deb=""
assert_match "cargo-deb built nta7516-milter_${VERSION}-1_<arch>.deb from the binary under test in $((SECONDS - t))s (incl. installing cargo-deb if it was missing)" \
    "nta7516-milter_${VERSION}-1_[a-z0-9]+\.deb$" "$deb"
[ -n "$deb" ] || exit 1

control=$(dpkg-deb -f "$deb")
assert_match "control: Depends on libc6, libgcc-s1, adduser and procps (/bin/kill for ExecReload) only" \
    '^Depends: adduser, libc6 \(>= 2\.[0-9]+\), libgcc-s1( \(>= [0-9.]+\))?, procps$' "$control"
assert_match "control: Section mail" '^Section: mail$' "$control"
assert_eq "conffiles: the config and the logrotate file" \
    "/etc/logrotate.d/nta7516-milter /etc/nta7516-milter/config.toml" \
    "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles | sort | paste -sd ' ')"

# ---------------------------------------------------------------------------------------
# Install

if dpkg-query -W -f='${Status}' nta7516-milter 2>/dev/null | grep -q 'installed\|config-files'; then
    e2e_warn "nta7516-milter was installed on this machine before the test: purging it"
    dpkg_ --purge nta7516-milter >/dev/null || true
fi
if [ -e "$LOGDIR" ]; then
    if [ -f "$MARKER" ]; then
        rm -rf "$LOGDIR" # left by an earlier run of this test
    else
        e2e_fail "$LOGDIR exists and was not made by this test: refusing to touch audit logs"
        trap - EXIT
        exit 1
    fi
fi
getent passwd "$USER_NAME" >/dev/null || touch "$PKG/created-user"
getent passwd nta7516-portal >/dev/null || touch "$PKG/created-portal-user"
for k in portal.key portal-mail.key; do
    [ -e "/etc/nta7516-milter/$k" ] && e2e_fail "/etc/nta7516-milter/$k exists before the test: the key tests below are not meaningful"
done

out=$(dpkg_ -i "$deb" 2>&1) && rc=0 || rc=$?
assert_eq "dpkg -i succeeds without systemd as PID 1" 0 "$rc" "$(printf '%s\n' "$out" | tail -n 15)"
assert_eq "dpkg: package installed" "install ok installed" \
    "$(dpkg-query -W -f='${Status}' nta7516-milter 2>&1)"
touch "$MARKER"

assert_eq "binary /usr/sbin/nta7516-milter root:root 0755" "root:root 755" "$(stat_of /usr/sbin/nta7516-milter)"
assert_eq "config /etc/nta7516-milter/config.toml root:nta7516-milter 0640" \
    "root:$USER_NAME 640" "$(stat_of /etc/nta7516-milter/config.toml)"
assert_true "installed config is packaging/config.toml" cmp /etc/nta7516-milter/config.toml "$E2E_REPO/packaging/config.toml"
assert_eq "unit /lib/systemd/system/nta7516-milter.service 0644" "root:root 644" \
    "$(stat_of /lib/systemd/system/nta7516-milter.service)"
assert_true "tmpfiles.d snippet installed" test -f /usr/lib/tmpfiles.d/nta7516-milter.conf
assert_eq "logrotate file 0644" "root:root 644" "$(stat_of /etc/logrotate.d/nta7516-milter)"
for f in /usr/share/man/man8/nta7516-milter.8.gz /usr/share/man/man5/nta7516-milter.toml.5.gz; do
    assert_true "man page $f (gzipped)" gzip -t "$f"
done
assert_match "man finds nta7516-milter(8)" '/usr/share/man/man8/nta7516-milter\.8\.gz' "$(man -w 8 nta7516-milter 2>&1)"
assert_match "man finds nta7516-milter.toml(5)" '/usr/share/man/man5/nta7516-milter\.toml\.5\.gz' "$(man -w 5 nta7516-milter.toml 2>&1)"
doc=/usr/share/doc/nta7516-milter
gaps=""
for f in README.md CHANGELOG.md README.packaging.md copyright examples/config.toml \
    postfix/README.md postfix/main.cf postfix/master.cf postfix/nta7516-milter_header_checks \
    postfix/nta7516-milter_bounce.cf exim/README.md portal/README.md; do
    [ -f "$doc/$f" ] || gaps="$gaps $f"
done
assert_eq "docs, Postfix and Exim snippets, the portal's README under $doc" "" "$gaps"

# the user and the directories
pw=$(getent passwd "$USER_NAME" || true)
assert_match "system user $USER_NAME (uid < 1000, no login shell, home /var/lib/nta7516-milter)" \
    "^$USER_NAME:x:[1-9][0-9]{0,2}:[0-9]+:[^:]*:/var/lib/nta7516-milter:/usr/sbin/nologin$" "$pw"
assert_eq "primary group $USER_NAME" "$USER_NAME" "$(id -gn "$USER_NAME" 2>&1)"
if getent group postfix >/dev/null; then
    assert_match "$USER_NAME is in group postfix (to chgrp its sockets)" '(^| )postfix( |$)' "$(id -Gn "$USER_NAME")"
    assert_eq "socket directory $SPOOL nta7516-milter:postfix 0750" "$USER_NAME:postfix 750" "$(stat_of "$SPOOL")"
    assert_true "systemd-tmpfiles accepts the snippet and keeps group postfix" \
        sh -c "systemd-tmpfiles --create /usr/lib/tmpfiles.d/nta7516-milter.conf && [ \"\$(stat -c %G $SPOOL)\" = postfix ]"
fi
assert_eq "log directory $LOGDIR nta7516-milter:nta7516-milter 0750" "$USER_NAME:$USER_NAME 750" "$(stat_of "$LOGDIR")"
assert_eq "state directory /var/lib/nta7516-milter 0750" "$USER_NAME:$USER_NAME 750" "$(stat_of /var/lib/nta7516-milter)"
assert_eq "DKIM key directory /etc/nta7516-milter/dkim root:nta7516-milter 0750" "root:$USER_NAME 750" \
    "$(stat_of /etc/nta7516-milter/dkim)"

# the portal: its user, its keys (made once), its unit (installed, not enabled)
assert_match "portal: system user nta7516-portal (no login shell, home /var/lib/nta7516-portal)" \
    '^nta7516-portal:x:[0-9]+:[0-9]+:[^:]*:/var/lib/nta7516-portal:/usr/sbin/nologin$' "$(getent passwd nta7516-portal || true)"
if getent group postdrop >/dev/null; then
    assert_match "portal: nta7516-portal is in group postdrop (Postfix's sendmail under NoNewPrivileges)" \
        '(^| )postdrop( |$)' "$(id -Gn nta7516-portal 2>&1)"
fi
assert_eq "portal: master key made, root:root 0600, 32 bytes or more" "root:root 600 ok" \
    "$(stat_of /etc/nta7516-milter/portal.key) $(test "$(stat -c %s /etc/nta7516-milter/portal.key)" -ge 32 && echo ok)"
assert_eq "portal: mail key made, root:nta7516-milter 0640, 32 bytes" "root:$USER_NAME 640 32" \
    "$(stat_of /etc/nta7516-milter/portal-mail.key) $(stat -c %s /etc/nta7516-milter/portal-mail.key)"
key_sum=$(sha256sum /etc/nta7516-milter/portal.key /etc/nta7516-milter/portal-mail.key)
assert_eq "portal: unit /lib/systemd/system/nta7516-portal.service 0644, not enabled" "root:root 644 no" \
    "$(stat_of /lib/systemd/system/nta7516-portal.service) $(test -e /etc/systemd/system/multi-user.target.wants/nta7516-portal.service && echo yes || echo no)"
assert_true "portal: man page nta7516-portal(8) installed" gzip -t /usr/share/man/man8/nta7516-portal.8.gz
verify=$(systemd-analyze verify /lib/systemd/system/nta7516-portal.service 2>&1) && rc=0 || rc=$?
own=$(printf '%s\n' "$verify" | grep 'nta7516-portal' || true)
assert_eq "portal: systemd-analyze verify: no complaint about the unit itself (exit $rc)" "" "$own" "$verify"
security=$(systemd-analyze security --offline=true /lib/systemd/system/nta7516-portal.service 2>&1 || true)
level=$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for nta7516-portal.service: \([0-9.]*\).*/\1/p')
assert_true "portal: systemd-analyze security: exposure ${level:-?} <= 2.0" \
    awk -v l="${level:-99}" 'BEGIN { exit !(l <= 2.0) }'
gaps=""
for setting in Type=notify User=nta7516-portal ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
    NoNewPrivileges=yes CapabilityBoundingSet= AmbientCapabilities= StateDirectory=nta7516-portal \
    LogsDirectory=nta7516-portal SystemCallFilter=@system-service MemoryDenyWriteExecute=yes \
    LoadCredential=portal.key:/etc/nta7516-milter/portal.key \
    LoadCredential=config.toml:/etc/nta7516-milter/config.toml \
    'ExecStart=/usr/sbin/nta7516-milter portal --config %d/config.toml' \
    'ReadWritePaths=-/var/spool/postfix/maildrop -/var/spool/postfix/public'; do
    grep -qxF -- "$setting" /lib/systemd/system/nta7516-portal.service || gaps="$gaps [$setting]"
done
assert_eq "portal: unit has every required hardening, credential and exec setting" "" "$gaps"

# the unit
verify=$(systemd-analyze verify /lib/systemd/system/nta7516-milter.service 2>&1) && rc=0 || rc=$?
own=$(printf '%s\n' "$verify" | grep 'nta7516-milter' || true)
assert_eq "systemd-analyze verify: no complaint about the unit itself (exit $rc)" "" "$own" "$verify"
security=$(systemd-analyze security --offline=true /lib/systemd/system/nta7516-milter.service 2>&1 || true)
level=$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for nta7516-milter.service: \([0-9.]*\).*/\1/p')
assert_true "systemd-analyze security: exposure ${level:-?} <= 2.0 (postfix-tlspol's own unit: 1.3)" \
    awk -v l="${level:-99}" 'BEGIN { exit !(l <= 2.0) }'
unit=/lib/systemd/system/nta7516-milter.service
gaps=""
# shellcheck disable=SC2016 # $MAINPID is literal unit text
for setting in Type=notify User=nta7516-milter ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
    NoNewPrivileges=yes CapabilityBoundingSet= 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
    SystemCallFilter=@system-service MemoryDenyWriteExecute=yes StateDirectory=nta7516-milter \
    LogsDirectory=nta7516-milter RuntimeDirectory=nta7516-milter \
    ReadWritePaths=-/var/spool/postfix/nta7516-milter \
    'ExecStartPre=/usr/sbin/nta7516-milter check-config /etc/nta7516-milter/config.toml' \
    'ExecStart=/usr/sbin/nta7516-milter serve --config /etc/nta7516-milter/config.toml' \
    'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure ProtectKernelTunables=yes \
    ProtectKernelModules=yes ProtectControlGroups=yes LockPersonality=yes RestrictRealtime=yes \
    RestrictNamespaces=yes PrivateDevices=yes SystemCallArchitectures=native UMask=0027; do
    grep -qxF -- "$setting" "$unit" || gaps="$gaps [$setting]"
done
assert_eq "unit has every required hardening and exec setting" "" "$gaps"

# the installed binary
assert_eq "installed binary --version" "nta7516-milter $VERSION" "$(/usr/sbin/nta7516-milter --version 2>&1)"
assert_exit "installed check-config accepts the installed config (root)" 0 \
    /usr/sbin/nta7516-milter check-config /etc/nta7516-milter/config.toml
assert_exit "check-config as the service user (ExecStartPre= runs as $USER_NAME)" 0 \
    setpriv --reuid="$USER_NAME" --regid="$USER_NAME" --init-groups \
    /usr/sbin/nta7516-milter check-config /etc/nta7516-milter/config.toml
assert_exit "the config is not readable by other users (nobody: exit 1)" 1 \
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
    /usr/sbin/nta7516-milter check-config /etc/nta7516-milter/config.toml

# ---------------------------------------------------------------------------------------
# Run the installed binary as the service user on the packaged unix-socket variant

if getent group postfix >/dev/null && getent passwd postfix >/dev/null; then
    # the packaged config with its commented unix-socket block switched on
    sed -e 's|^milter = "inet:|# &|' -e 's|^map = "inet:|# &|' \
        -e '/^# Packaged:/,/^$/ s/^# \(milter\|map\|socket_group\) = /\1 = /' \
        /etc/nta7516-milter/config.toml >"$E2E_CONF"
    chown "root:$USER_NAME" "$E2E_CONF"
    chmod 0640 "$E2E_CONF"
    assert_eq "packaged unix-socket variant: sockets in $SPOOL, group postfix" \
        "milter = \"unix:$SPOOL/milter.sock\"|map = \"unix:$SPOOL/map.sock\"|socket_group = \"postfix\"" \
        "$(grep -E '^(milter|map|socket_group) = ' "$E2E_CONF" | paste -sd '|')"

    lab_bg pkg-daemon setpriv --reuid="$USER_NAME" --regid="$USER_NAME" --init-groups \
        --inh-caps=-all --bounding-set=-all /usr/sbin/nta7516-milter serve --config "$E2E_CONF"
    dpid=$(cat "$LAB/pids/pkg-daemon.pid")
    if wait_for "the packaged daemon's map socket" 50 0.2 test -S "$SPOOL/map.sock"; then
        e2e_pass "installed daemon starts as $USER_NAME (no capabilities) on the unix-socket variant"
    else
        e2e_fail "installed daemon did not create $SPOOL/map.sock" "$(tail -n 20 "$LAB/log/pkg-daemon.out" 2>/dev/null)"
    fi
    assert_eq "map socket $USER_NAME:postfix 0660" "$USER_NAME:postfix 660" "$(stat_of "$SPOOL/map.sock")"
    assert_eq "milter socket $USER_NAME:postfix 0660" "$USER_NAME:postfix 660" "$(stat_of "$SPOOL/milter.sock")"

    # passed as code (-c), not as a path: the users below may not be able to read the
    # checkout; /usr/bin/python3, not a user's pyenv
    socketmap_py=$(cat "$E2E_DIR/py/socketmap_query.py")
    # Postfix's daemons run with their primary group only (set_ugid): --clear-groups
    assert_eq "a process with only group postfix gets a socketmap answer" "9:NOTFOUND ," \
        "$(setpriv --reuid=postfix --regid=postfix --clear-groups /usr/bin/python3 -c "$socketmap_py" "$SPOOL/map.sock" 2>&1)"
    assert_eq "other users cannot reach the sockets" "connect: Permission denied" \
        "$(setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c "$socketmap_py" "$SPOOL/map.sock" 2>&1)"

    audit="$LOGDIR/audit.log"
    kill -HUP "$dpid"
    wait_for "config_reloaded in the audit log" 50 0.2 grep -q '"event_type":"config_reloaded"' "$audit" ||
        e2e_fail "no config_reloaded line after SIGHUP" "$(tail -n 5 "$LAB/log/pkg-daemon.out" 2>/dev/null)"
    assert_eq "audit log created $USER_NAME:$USER_NAME 0640" "$USER_NAME:$USER_NAME 640" "$(stat_of "$audit")"

    out=$(logrotate -f -s "$PKG/logrotate.state" /etc/logrotate.d/nta7516-milter 2>&1) && rc=0 || rc=$?
    assert_eq "the installed logrotate file rotates the audit log (logrotate -f)" 0 "$rc" "$out"
    rotated="$audit-$(date +%Y%m%d)"
    assert_true "rotated file $(basename "$rotated") (dateext, not yet compressed: delaycompress)" test -f "$rotated"
    assert_eq "new audit.log created by logrotate $USER_NAME:$USER_NAME 0640" "$USER_NAME:$USER_NAME 640" "$(stat_of "$audit")"

    kill -HUP "$dpid"
    wait_for "the daemon writes to the new file after the rotation" 50 0.2 \
        grep -q '"event_type":"config_reloaded"' "$audit" ||
        e2e_fail "no line in the new audit.log after rotation and SIGHUP"
    kill -TERM "$dpid"
    wait_for "the daemon exits on SIGTERM" 100 0.2 sh -c "! kill -0 $dpid 2>/dev/null" ||
        e2e_fail "daemon still running 20 s after SIGTERM"
    assert_true "shutdown event in the new audit.log" grep -q '"event_type":"shutdown"' "$audit"
    out=$(/usr/sbin/nta7516-milter audit verify "$rotated" "$audit" 2>&1) && rc=0 || rc=$?
    assert_eq "audit verify over the rotated and the new file: exit 0" 0 "$rc" "$out"
    assert_match "the chain runs from the genesis across the rotation" \
        'lines in 2 files: chain intact' "$out"
    rm -f "$E2E_CONF" "$LAB/pids/pkg-daemon.pid"
else
    e2e_fail "Postfix (user and group postfix) is not installed: the socket and rotation checks need it"
fi

# ---------------------------------------------------------------------------------------
# Upgrade (reinstall) over a modified conffile

printf '\n# local change by the e2e test\n' >>/etc/nta7516-milter/config.toml
chmod 0644 /etc/nta7516-milter/config.toml
out=$(dpkg_ -i "$deb" 2>&1) && rc=0 || rc=$?
assert_eq "reinstall (upgrade path of postinst) succeeds" 0 "$rc" "$(printf '%s\n' "$out" | tail -n 15)"
assert_true "reinstall keeps the locally modified conffile" grep -q 'local change by the e2e test' /etc/nta7516-milter/config.toml
assert_eq "reinstall restores root:nta7516-milter 0640 on the config" "root:$USER_NAME 640" \
    "$(stat_of /etc/nta7516-milter/config.toml)"
assert_eq "reinstall never overwrites the portal's keys" "$key_sum" \
    "$(sha256sum /etc/nta7516-milter/portal.key /etc/nta7516-milter/portal-mail.key)"

# ---------------------------------------------------------------------------------------
# Remove and purge

out=$(dpkg_ -r nta7516-milter 2>&1) && rc=0 || rc=$?
assert_eq "dpkg -r succeeds" 0 "$rc" "$out"
assert_true "remove: binary and unit gone" sh -c '! [ -e /usr/sbin/nta7516-milter ] && ! [ -e /lib/systemd/system/nta7516-milter.service ]'
assert_true "remove: the conffile stays" test -f /etc/nta7516-milter/config.toml

out=$(dpkg_ --purge nta7516-milter 2>&1) && rc=0 || rc=$?
assert_eq "dpkg --purge succeeds" 0 "$rc" "$out"
assert_eq "purge: package gone from dpkg's database" "" \
    "$(dpkg-query -W -f='${Status}' nta7516-milter 2>/dev/null || true)"
left=""
for p in /usr/sbin/nta7516-milter /lib/systemd/system/nta7516-milter.service /etc/nta7516-milter/config.toml \
    /etc/nta7516-milter/dkim /lib/systemd/system/nta7516-portal.service /etc/logrotate.d/nta7516-milter /usr/lib/tmpfiles.d/nta7516-milter.conf /var/lib/nta7516-milter \
    "$SPOOL" /usr/share/doc/nta7516-milter /usr/share/man/man8/nta7516-milter.8.gz; do
    [ -e "$p" ] && left="$left $p"
done
assert_eq "purge removes binary, unit, config, logrotate, tmpfiles, state, sockets and docs" "" "$left"
assert_true "purge KEEPS the audit logs in $LOGDIR (NEN 7513: five years)" \
    sh -c "[ -d '$LOGDIR' ] && ls '$LOGDIR' | grep -q '^audit.log'"
assert_true "purge keeps the user owning them (no uid reuse)" getent passwd "$USER_NAME"
assert_match "purge says that it kept the audit logs" 'kept /var/log/nta7516-milter' "$out"
assert_eq "purge KEEPS the portal's keys, unchanged, and nothing else in /etc/nta7516-milter" \
    "$key_sum|portal-mail.key portal.key" \
    "$(sha256sum /etc/nta7516-milter/portal.key /etc/nta7516-milter/portal-mail.key 2>&1)|$(ls /etc/nta7516-milter 2>&1 | sort | tr '\n' ' ' | sed 's/ $//')"
assert_match "purge says that it kept the portal's key (and how to remove it)" \
    'kept /etc/nta7516-milter/portal.key .*remove it yourself' "$out"
assert_true "purge keeps the portal's user" getent passwd nta7516-portal
