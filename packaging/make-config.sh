#!/usr/bin/env bash
# packaging/make-config.sh: the packaged /etc/nta7516-milter/config.toml, generated from
# the sample config/config.toml so that the two cannot drift apart.
#
#   packaging/make-config.sh            rewrite packaging/config.toml
#   packaging/make-config.sh --check    exit 1 (with a diff) if packaging/config.toml is stale
#
# The packaged copy differs from the sample in exactly two places:
#   1. [audit] file = "/var/log/nta7516-milter/audit.log" is on (NEN 7513 audit trail; the
#      unit's LogsDirectory= creates the directory, logrotate keeps 61 monthly files);
#   2. under [server], a commented-out unix-socket variant pointing at the directory the
#      package prepares for a chrooted Postfix (/var/spool/postfix/nta7516-milter).
# The listeners stay on the loopback defaults (inet:127.0.0.1:7516 and :7517): they work
# for chrooted and unchrooted Postfix and for Exim alike, need no group membership, and
# are what postfix/main.cf and postfix/README.md use.
# Each edit must match exactly once: if config/config.toml changes shape, this fails
# loudly instead of shipping a config without the audit log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src="$here/../config/config.toml"
dst="$here/config.toml"

generate() {
    awk '
        BEGIN { audit = 0; map = 0; insection = "" }
        /^\[/ { insection = $0 }
        insection == "[audit]" && $0 == "# file = \"/var/log/nta7516-milter/audit.log\"" {
            print "file = \"/var/log/nta7516-milter/audit.log\""
            audit++
            next
        }
        { print }
        insection == "[server]" && $0 == "map = \"inet:127.0.0.1:7517\"" {
            print ""
            print "# Packaged: for a chrooted Postfix, unix sockets in the directory the package"
            print "# prepares (owner nta7516-milter, group postfix, mode 0750; the daemon user is"
            print "# in group postfix). Postfix then uses relative names: unix:nta7516-milter/milter.sock"
            print "# and socketmap:unix:nta7516-milter/map.sock:route (see the postfix README in"
            print "# /usr/share/doc/nta7516-milter/postfix/). Listener changes need a restart."
            print "# milter = \"unix:/var/spool/postfix/nta7516-milter/milter.sock\""
            print "# map = \"unix:/var/spool/postfix/nta7516-milter/map.sock\""
            print "# socket_group = \"postfix\""
            map++
        }
        END {
            if (audit != 1) { print "make-config.sh: the [audit] file line was found " audit " times (want 1)" > "/dev/stderr"; exit 1 }
            if (map != 1) { print "make-config.sh: the [server] map line was found " map " times (want 1)" > "/dev/stderr"; exit 1 }
        }
    ' "$src"
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
generate >"$tmp"

if [ "${1:-}" = --check ]; then
    if ! diff -u "$dst" "$tmp"; then
        echo "packaging/config.toml is stale: run packaging/make-config.sh" >&2
        exit 1
    fi
    exit 0
fi
cp "$tmp" "$dst"
chmod 0644 "$dst"
echo "wrote $dst"
