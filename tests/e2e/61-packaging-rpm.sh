#!/usr/bin/env bash
# 61-packaging-rpm: the RPM package (cargo-generate-rpm), built from the binary under test
# and inspected with rpm -qp (it is not installed: this is a Debian machine).
#
#   build     packaging/build-packages.sh --binary $NTA_BIN --fast --rpm-only
#             (cargo-generate-rpm is installed, pinned, when missing: ~4 min of compiling,
#             once per machine)
#   contents  rpm -qlp: the expected file list, the same files as the .deb of
#             60-packaging-deb (unit under /usr/lib/systemd/system, man pages not gzipped);
#             modes and owners (config root:nta7516-milter 0640, binary 0755); config files
#             %config(noreplace); Requires; scriptlets that create the user, keep the logs
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
/usr/lib/tmpfiles.d/nta7516-milter.conf
/usr/sbin/nta7516-milter
/usr/share/doc/nta7516-milter/CHANGELOG.md
/usr/share/doc/nta7516-milter/README.md
/usr/share/doc/nta7516-milter/README.packaging.md
/usr/share/doc/nta7516-milter/examples/config.toml
/usr/share/doc/nta7516-milter/portal/README.md
$(cd "$E2E_REPO" && for f in exim/* postfix/*; do printf '/usr/share/doc/nta7516-milter/%s\n' "$f"; done)
/usr/share/man/man5/nta7516-milter.toml.5
/usr/share/man/man8/nta7516-milter.8"
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
