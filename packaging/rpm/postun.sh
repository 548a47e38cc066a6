# shellcheck shell=sh
# %postun of nta7516-milter (rpm). $1: 0 = erase, 1 = upgrade.
# Erase keeps /var/log/nta7516-milter (NEN 7513: five years) and the user that owns it.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        if /usr/sbin/nta7516-milter check-config /etc/nta7516-milter/config.toml >/dev/null 2>&1; then
            systemctl try-restart nta7516-milter.service >/dev/null 2>&1 || :
        else
            echo "nta7516-milter: NOT restarted: the new version rejects /etc/nta7516-milter/config.toml (run nta7516-milter check-config)" >&2
        fi
    fi
fi
if [ "$1" -eq 0 ]; then
    rm -rf /var/lib/nta7516-milter /var/spool/postfix/nta7516-milter
fi
exit 0
