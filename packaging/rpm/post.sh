# shellcheck shell=sh
# %post of nta7516-milter (rpm). $1: 1 = install, 2 = upgrade.
# Postfix daemons keep only their primary group, so the sockets need group postfix and
# the daemon must be in it to chgrp them (the unit has no capabilities).
if getent group postfix >/dev/null; then
    usermod -a -G postfix nta7516-milter || :
fi
install -d -m 0750 -o nta7516-milter -g nta7516-milter /var/lib/nta7516-milter /var/log/nta7516-milter
# The portal: in group postdrop (Postfix's sendmail under NoNewPrivileges), its secrets
# made once and never overwritten, root-only (the unit hands them over).
if getent group postdrop >/dev/null; then
    usermod -a -G postdrop nta7516-portal || :
fi
[ -e /etc/nta7516-milter/portal.key ] ||
    /usr/sbin/nta7516-milter portal keygen --out /etc/nta7516-milter/portal.key >/dev/null || :
if [ ! -e /etc/nta7516-milter/portal-mail.key ]; then
    (umask 077 && head -c 32 /dev/urandom >/etc/nta7516-milter/portal-mail.key)
    chown root:nta7516-milter /etc/nta7516-milter/portal-mail.key
    chmod 0640 /etc/nta7516-milter/portal-mail.key
fi
[ -d /etc/nta7516-milter/dkim ] || install -d -m 0750 -o root -g nta7516-milter /etc/nta7516-milter/dkim
if [ -d /var/spool/postfix ] && getent group postfix >/dev/null; then
    install -d -m 0750 -o nta7516-milter -g postfix /var/spool/postfix/nta7516-milter
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    # rpm convention (presets): not enabled or started on install; on upgrade a running
    # daemon is restarted in %postun once the new configuration check passes.
    if [ "$1" -eq 1 ]; then
        systemctl preset nta7516-milter.service >/dev/null 2>&1 || :
    fi
fi
exit 0
