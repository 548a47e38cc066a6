# shellcheck shell=sh
# %pre of nta7516-milter (rpm): the static system user and group, before the files
# (the config is packaged as root:nta7516-milter 0640). See packaging/README.md.
getent group nta7516-milter >/dev/null || groupadd -r nta7516-milter
getent passwd nta7516-milter >/dev/null || \
    useradd -r -g nta7516-milter -d /var/lib/nta7516-milter -M -s /sbin/nologin \
        -c "NTA 7516 secure e-mail gateway" nta7516-milter
# The eDelivery portal's own user (nta7516-portal.service).
getent group nta7516-portal >/dev/null || groupadd -r nta7516-portal
getent passwd nta7516-portal >/dev/null || \
    useradd -r -g nta7516-portal -d /var/lib/nta7516-portal -M -s /sbin/nologin \
        -c "NTA 7516 eDelivery portal" nta7516-portal
exit 0
