#!/usr/bin/env bash
# 61-packaging-rpm: the RPM package (cargo-generate-rpm), built from the binary under test,
# inspected with rpm -qp, then installed with rpm --root into a scratch Debian root.
#
#   build     packaging/build-packages.sh --binary $NTA_BIN --fast --rpm-only
#             (cargo-generate-rpm is installed, pinned, when missing: ~4 min of compiling,
#             once per machine)
#   contents  rpm -qlp: the expected file list, the same files as the .deb of
#             60-packaging-deb (unit under /usr/lib/systemd/system, man pages not gzipped);
#             modes and owners (config root:nta7516-milter 0640, binary 0755); config files
#             %config(noreplace); Requires; scriptlets that create the user, keep the logs
#   install   rpm --root <debootstrap minbase root> -i --nodeps: the scriptlets run chrooted
#             there (user and group created, directories owned and moded), rpm -V clean,
#             the binary and check-config run as the daemon user; rpm -e keeps the logs
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
PKG="$LAB/packaging-rpm"
mkdir -p "$PKG"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$E2E_REPO/Cargo.toml" | head -n 1)

for s in pre post preun postun; do
    assert_true "rpm scriptlet $s.sh parses (sh -n)" sh -n "$E2E_REPO/packaging/rpm/$s.sh"
done

t=$SECONDS
if ! out=$("$E2E_REPO/packaging/build-packages.sh" --binary "$NTA_BIN" --fast --rpm-only \
    --install-tools --out "$PKG" 2>&1); then
    e2e_fail "packaging/build-packages.sh --rpm-only failed" "$(printf '%s\n' "$out" | tail -n 25)"
    exit 1
fi
printf '%s\n' "$out" | grep -E '^\[packaging\] installed' || true
rpms=("$PKG"/*.rpm)
rpmfile=${rpms[0]}
[ -e "$rpmfile" ] || rpmfile=""
assert_match "cargo-generate-rpm built nta7516-milter-${VERSION}-1.<arch>.rpm from the binary under test in $((SECONDS - t))s (incl. installing cargo-generate-rpm if it was missing)" \
    "nta7516-milter-${VERSION}-1\.[a-z0-9_]+\.rpm$" "$rpmfile"
[ -n "$rpmfile" ] || exit 1

expected="/etc/logrotate.d/nta7516-milter
/etc/nta7516-milter/config.toml
/usr/lib/systemd/system/nta7516-milter.service
/usr/lib/systemd/system/nta7516-portal.service
/usr/lib/tmpfiles.d/nta7516-milter.conf
/usr/sbin/nta7516-milter
/usr/share/doc/nta7516-milter/CHANGELOG.md
/usr/share/doc/nta7516-milter/README.md
/usr/share/doc/nta7516-milter/README.packaging.md
/usr/share/doc/nta7516-milter/examples/config.toml
/usr/share/doc/nta7516-milter/portal/README.md
$(cd "$E2E_REPO" && for f in exim/* postfix/*; do printf '/usr/share/doc/nta7516-milter/%s\n' "$f"; done)
/usr/share/man/man5/nta7516-milter.toml.5
/usr/share/man/man8/nta7516-milter.8
/usr/share/man/man8/nta7516-portal.8"
files=$(rpm -qlp "$rpmfile" 2>&1 | sort)
assert_eq "rpm -qlp: the expected file list" "$(printf '%s\n' "$expected" | sort)" "$files" \
    "$(diff <(printf '%s\n' "$expected" | sort) <(printf '%s\n' "$files") || true)"

# the same files as the .deb (when 60-packaging-deb built one in this lab)
debs=("$LAB"/packaging/nta7516-milter_*.deb)
deb=${debs[0]}
if [ -e "$deb" ]; then
    debfiles=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' |
        sed -e 's|^/lib/systemd/|/usr/lib/systemd/|' -e 's|\(/usr/share/man/.*\)\.gz$|\1|' |
        grep -v '^/usr/share/doc/nta7516-milter/copyright$' | sort)
    assert_eq "the .rpm has the same files as the .deb (unit path and man compression aside)" \
        "$debfiles" "$files" "$(diff <(printf '%s\n' "$debfiles") <(printf '%s\n' "$files") || true)"
fi

modes=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpmfile" 2>&1)
assert_match "binary -rwxr-xr-x root:root" '^-rwxr-xr-x root:root /usr/sbin/nta7516-milter$' "$modes"
assert_match "config -rw-r----- root:nta7516-milter" \
    '^-rw-r----- root:nta7516-milter /etc/nta7516-milter/config.toml$' "$modes"
assert_match "unit -rw-r--r--" '^-rw-r--r-- root:root /usr/lib/systemd/system/nta7516-milter.service$' "$modes"
assert_eq "rpm -qcp: config files" \
    "/etc/logrotate.d/nta7516-milter /etc/nta7516-milter/config.toml" \
    "$(rpm -qcp "$rpmfile" 2>&1 | sort | paste -sd ' ')"
assert_eq "config files are %config(noreplace)" "noreplace noreplace" \
    "$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmfile" 2>&1 | awk '$2 ~ /^\/etc\// { print ($1 ~ /n/ ? "noreplace" : $1) }' | paste -sd ' ')"
requires=$(rpm -qp --requires "$rpmfile" 2>&1)
assert_match "Requires: glibc >= 2.34" '^glibc >= 2\.34$' "$requires"
assert_match "Requires: shadow-utils (useradd)" '^shadow-utils' "$requires"
scripts=$(rpm -qp --scripts "$rpmfile" 2>&1)
assert_match "%pre creates the system user" 'useradd -r -g nta7516-milter' "$scripts"
assert_match "%post puts it in group postfix when that exists" 'usermod -a -G postfix nta7516-milter' "$scripts"
assert_match "%preun stops and disables the unit on erase" 'disable --now nta7516-milter.service' "$scripts"
if printf '%s\n' "$scripts" | grep -q 'rm -rf.*/var/log/nta7516-milter'; then
    e2e_fail "%postun must keep /var/log/nta7516-milter (NEN 7513 retention)"
else
    e2e_pass "%postun keeps /var/log/nta7516-milter (NEN 7513 retention)"
fi
rpm2cpio "$rpmfile" | (cd "$PKG" && cpio -id --quiet ./usr/sbin/nta7516-milter) || true
assert_true "the packaged binary is stripped (no .symtab)" \
    sh -c "test -x '$PKG/usr/sbin/nta7516-milter' && ! readelf -S '$PKG/usr/sbin/nta7516-milter' | grep -q '\.symtab'"
assert_eq "the packaged binary runs (--version)" "nta7516-milter $VERSION" "$("$PKG/usr/sbin/nta7516-milter" --version 2>&1)"

# --- installed: rpm --root into a scratch Debian root, scriptlets run inside it ----------
# A Debian minbase root (debootstrap, as 62-systemd-boot) has what the scriptlets call:
# /bin/sh, getent, groupadd/useradd/usermod (passwd), install. rpm runs each scriptlet
# chrooted into --root. --nodeps: the root has no rpm database of glibc or shadow-utils
# (Debian packages them); the real dependencies were checked above with --requires.
# NTA_E2E_BOOT_ROOT (see 62-systemd-boot) is copied, not used: it must stay clean.
ROOT="$LAB/rpm-root"
rm -rf "$ROOT"
t=$SECONDS
if [ -n "${NTA_E2E_BOOT_ROOT:-}" ] && [ -x "$NTA_E2E_BOOT_ROOT/bin/sh" ]; then
    cp -a "$NTA_E2E_BOOT_ROOT" "$ROOT"
elif ! out=$(timeout 900 debootstrap --variant=minbase bookworm "$ROOT" http://deb.debian.org/debian 2>&1); then
    e2e_fail "debootstrap of a scratch Debian 12 root failed" "$(printf '%s\n' "$out" | tail -n 15)"
    exit 1
fi
e2e_pass "a scratch Debian 12 root for rpm --root in $((SECONDS - t))s"
in_root() { chroot "$ROOT" "$@"; }
rpm --root "$ROOT" --initdb
out=$(rpm --root "$ROOT" -i --nodeps "$rpmfile" 2>&1) && rc=0 || rc=$?
assert_eq "rpm --root -i --nodeps: installed, scriptlets succeeded" "0 " "$rc $(printf '%s' "$out" | grep -iE 'error|warning|fail' | head -n 3)"
assert_eq "rpm -q in the root" "nta7516-milter-${VERSION}-1" "$(rpm --root "$ROOT" -q --qf '%{NAME}-%{VERSION}-%{RELEASE}' nta7516-milter 2>&1)"
assert_eq "rpm -V in the root: every file as packaged (content, mode, owner)" "" "$(rpm --root "$ROOT" -V --nodeps nta7516-milter 2>&1)"
assert_match "%pre created the system user (group nta7516-milter, nologin, no home)" \
    '^nta7516-milter:x:[0-9]+:[0-9]+:NTA 7516 secure e-mail gateway:/var/lib/nta7516-milter:/sbin/nologin$' \
    "$(in_root getent passwd nta7516-milter)"
assert_match "%pre: a system uid (< 1000)" '^[0-9]{1,3}$' "$(in_root id -u nta7516-milter)"
assert_eq "%pre: its group" nta7516-milter "$(in_root id -gn nta7516-milter)"
stat_of() { in_root stat -c '%U:%G %a' "$1" 2>&1; }
assert_eq "config owned root:nta7516-milter 0640" "root:nta7516-milter 640" "$(stat_of /etc/nta7516-milter/config.toml)"
assert_eq "%post: /var/log/nta7516-milter nta7516-milter 0750" "nta7516-milter:nta7516-milter 750" "$(stat_of /var/log/nta7516-milter)"
assert_eq "%post: /var/lib/nta7516-milter nta7516-milter 0750" "nta7516-milter:nta7516-milter 750" "$(stat_of /var/lib/nta7516-milter)"
assert_eq "%post: /etc/nta7516-milter/dkim root:nta7516-milter 0750" "root:nta7516-milter 750" "$(stat_of /etc/nta7516-milter/dkim)"
assert_eq "%post: no postfix group, so no socket directory" "absent" \
    "$([ -e "$ROOT/var/spool/postfix/nta7516-milter" ] && echo present || echo absent)"
assert_match "%pre created the portal's user nta7516-portal" '^nta7516-portal:x:[0-9]+:[0-9]+:' "$(in_root getent passwd nta7516-portal)"
assert_eq "%post made the portal's keys: master root:root 0600, mail root:nta7516-milter 0640" \
    "root:root 600|root:nta7516-milter 640" \
    "$(stat_of /etc/nta7516-milter/portal.key)|$(stat_of /etc/nta7516-milter/portal-mail.key)"
assert_eq "the installed binary runs in the root" "nta7516-milter $VERSION" "$(in_root /usr/sbin/nta7516-milter --version 2>&1)"
assert_true "the installed config passes check-config, as the daemon user" \
    in_root setpriv --reuid nta7516-milter --regid nta7516-milter --init-groups \
    /usr/sbin/nta7516-milter check-config /etc/nta7516-milter/config.toml
# erase: %preun/%postun run; the logs stay (NEN 7513), and so does the user (rpm convention)
printf 'audit line\n' >"$ROOT/var/log/nta7516-milter/audit.log"
out=$(rpm --root "$ROOT" -e nta7516-milter 2>&1) && rc=0 || rc=$?
assert_eq "rpm --root -e: erased, scriptlets succeeded" "0" "$rc"
assert_eq "after erase: the binary is gone" absent "$([ -e "$ROOT/usr/sbin/nta7516-milter" ] && echo present || echo absent)"
assert_eq "after erase: the audit log is kept" "audit line" "$(cat "$ROOT/var/log/nta7516-milter/audit.log" 2>&1)"
assert_true "after erase: the portal's master key is kept" test -s "$ROOT/etc/nta7516-milter/portal.key"
rm -rf "$ROOT"
