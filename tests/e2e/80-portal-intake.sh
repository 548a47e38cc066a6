#!/usr/bin/env bash
# 80-portal-intake: real Postfix delivers secure mail for a non-compliant domain to the
# portal (`nta7516-milter portal`) over LMTP (RFC 2033).
#
# Same mail lab as 20-postfix-routes (lib-postfix.sh). The route to the portal is given
# here by a pcre transport map in front of the socketmap (notlsa.lab.test ->
# nta-portal:inet:[127.0.10.1]:7524, the master.cf `nta-portal` lmtp service), so this case
# tests the intake on its own, whatever the route map answers. Evidence: pfa's log
# (relay=, status=, the LMTP reply), postqueue -j, the portal's hash-chained audit file
# and `audit verify`.
#
# Cases: a message with an attachment and a [sms:] subject tag is stored (250 from the portal, status=sent) and
# audited with its size and digest, never its subject; a tag at the end of the subject
# (another number form) is stored too; a message without a number is returned to the sender
# with the portal's 550 5.7.0 text (number_wait = "off"); the portal stopped -> deferred (the mail stays queued)
# and delivered after it is back; SIGTERM stops it cleanly; its audit chain verifies.
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

pf_lab_up fallback

# its own directory: case 32 runs a portal in $LAB/portal, and the counts below are this
# case's alone
PORTAL_DIR="$LAB/portal-intake"
PORTAL_LMTP="127.0.10.1:7524"
rm -rf "$PORTAL_DIR"
mkdir -p "$PORTAL_DIR"
rm -f "$PORTAL_DIR/portal.key"
"$NTA_BIN" portal keygen --out "$PORTAL_DIR/portal.key" >"$LAB/log/portal-keygen.out" 2>&1 ||
    e2e_die "portal keygen failed: $(cat "$LAB/log/portal-keygen.out")"
assert_eq "keygen: the key file is mode 0600" 600 "$(stat -c %a "$PORTAL_DIR/portal.key")"
assert_exit "keygen: refuses to overwrite the key" 2 "$NTA_BIN" portal keygen --out "$PORTAL_DIR/portal.key"
printf 'lab-token\n' >"$PORTAL_DIR/sms.token"
head -c 32 /dev/urandom >"$PORTAL_DIR/portal-mail.key"
chmod 600 "$PORTAL_DIR/portal-mail.key"
cat >"$PORTAL_DIR/portal.toml" <<EOT
[domains]
own = ["sender.lab.test"]

[portal]
listen = "inet:127.0.10.1:7580"
public_url = "http://127.0.10.1:7580"
lmtp = "inet:$PORTAL_LMTP"
store = "sqlite:$PORTAL_DIR/portal.db"
key_file = "$PORTAL_DIR/portal.key"
from = "portaal@sender.lab.test"
audit_file = "$PORTAL_DIR/portal-audit.log"
mail_key = "$PORTAL_DIR/portal-mail.key"
# mail without a number bounces here (the option); waiting for it is 33-portal-browser's
number_wait = "off"
# no submission here: notifications stay pending (their own case files test them)
sendmail = "/nonexistent/sendmail"

[[dkim]]
domain = "sender.lab.test"
selector = "$PF_DKIM_SELECTOR"
key = "$LAB/dkim/sender.pem"

[portal.sms]
provider = "webhook"
url = "http://127.0.10.1:9/sms"
token_file = "$PORTAL_DIR/sms.token"
EOT
assert_exit "check-config accepts the portal configuration" 0 "$NTA_BIN" check-config "$PORTAL_DIR/portal.toml"

portal_up() { ip netns exec "$NETNS" timeout 2 bash -c "exec 3<>/dev/tcp/${PORTAL_LMTP%:*}/${PORTAL_LMTP#*:}" 2>/dev/null; }
portal_start() {
    lab_bg portal "$NTA_BIN" portal --config "$PORTAL_DIR/portal.toml"
    wait_for "the portal listens on $PORTAL_LMTP" 100 0.1 portal_up ||
        e2e_die "the portal does not listen (see $LAB/log/portal.out)"
}
portal_stop() {
    lab_stop portal
    wait_for "the portal's LMTP socket is closed" 50 0.1 sh -c "! ip netns exec '$NETNS' timeout 2 bash -c 'exec 3<>/dev/tcp/${PORTAL_LMTP%:*}/${PORTAL_LMTP#*:}' 2>/dev/null" ||
        e2e_die "the portal still listens after SIGTERM"
}
portal_events() { grep -c "\"event_type\":\"$1\"" "$PORTAL_DIR/portal-audit.log" 2>/dev/null || true; }
trap 'lab_stop portal; pf_lab_down' EXIT

# pfa: the nta-portal lmtp service (postfix/master.cf when it has one) and the route
d=$(pf_etc pfa)
grep -q '^nta-portal ' "$d/master.cf" ||
    printf 'nta-portal unix  -       -       n       -       -       lmtp\n' >>"$d/master.cf"
# pcre, not texthash: Postfix asks every map for the full address before any for the
# domain, and the route map answers full addresses
printf '/@notlsa\\.lab\\.test$/ nta-portal:inet:[%s]:%s\n' "${PORTAL_LMTP%:*}" "${PORTAL_LMTP#*:}" >"$d/portal_transport.pcre"
maps=$(postconf -c "$d" -h transport_maps)
postconf -c "$d" -e "transport_maps = pcre:$d/portal_transport.pcre, $maps"
# a restart, not a reload: no old trivial-rewrite may answer the first lookup
pf_stop pfa
pf_start pfa
portal_start

# --- stored: a message with an attachment, the number as a subject tag -------------------
# (the X-NTA7516-Phone header passes the milter only from trusted clients: that side and
# its end-to-end case belong to the milter's handling of the header)
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "attachment: pfa accepts the message" int "$t" --to "$r" \
    --header "Subject: [sms:+31612345678] e2e $t" --attach-type text/plain --attach-body "bijlage $t"
q=$PF_QID
pf_assert_log "attachment: delivered over LMTP to the portal, 250 after the commit" pfa \
    "$q: to=<$r>, relay=127\.0\.10\.1\[127\.0\.10\.1\]:7524, .*status=sent \(250 2\.0\.0 .*Stored in the portal"
wait_for "the portal audited it" 50 0.1 sh -c "grep -q '\"event_type\":\"portal_stored\".*$r' '$PORTAL_DIR/portal-audit.log'"
line=$(grep '"event_type":"portal_stored"' "$PORTAL_DIR/portal-audit.log" | grep -F "$r" | head -n 1)
assert_match "attachment: portal_stored has the digest and size" '"sha256":"[0-9a-f]{64}".*"size":[1-9]' "$line"
assert_eq "attachment: no subject or body in the portal's audit log" 0 "$(grep -c "e2e $t\|bijlage" "$PORTAL_DIR/portal-audit.log")"

# --- stored: the number as a subject tag --------------------------------------------------
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "subject tag: pfa accepts the message" int "$t" --to "$r" \
    --header "Subject: e2e $t [SMS:06-12345678]"
q=$PF_QID
pf_assert_log "subject tag: stored by the portal" pfa "$q: to=<$r>, relay=127\.0\.10\.1.*status=sent \(250 2\.0\.0 "

# --- no number: returned to the sender with the portal's text ----------------------------
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "no number: pfa accepts the message" int "$t" --to "$r"
q=$PF_QID
pf_assert_log "no number: bounced with the portal's 550 5.7.0 (how to supply a number)" pfa \
    "$q: to=<$r>, relay=127\.0\.10\.1.*status=bounced \(host 127\.0\.10\.1\[127\.0\.10\.1\] said: 550 5\.7\.0 .*\[sms:\+31612345678\]"

# --- the portal down: deferred, kept, delivered after it is back -----------------------------
portal_stop
t=$(pf_token)
r="$t@notlsa.lab.test"
pf_accepted "portal down: pfa accepts the message" int "$t" --to "$r" --header "Subject: [sms:0612345678] e2e $t"
q=$PF_QID
pf_assert_log "portal down: deferred (connection refused)" pfa "$q: to=<$r>, .*status=deferred"
assert_eq "portal down: the message stays in pfa's queue" deferred "$(pf_queued pfa "$q")"
before=$(portal_events portal_stored)
portal_start
pf_flush pfa
pf_assert_log "portal back: the queued message is delivered to the portal" pfa \
    "$q: to=<$r>, relay=127\.0\.10\.1.*status=sent \(250 2\.0\.0 "
wait_for "the portal audited the late message" 50 0.1 sh -c "[ \$(grep -c '\"event_type\":\"portal_stored\"' '$PORTAL_DIR/portal-audit.log') -gt $before ]"
assert_eq "portal back: the queue is empty" 0 "$(pf_queue pfa | grep -c .)"

# --- stop and the audit chain --------------------------------------------------------------
pid=$(cat "$LAB/pids/portal.pid")
portal_stop
assert_true "SIGTERM: the portal exited" sh -c "! kill -0 $pid 2>/dev/null"
assert_eq "audit: three messages stored" 3 "$(portal_events portal_stored)"
assert_true "audit: the refusal is recorded" test "$(portal_events portal_intake_refused)" -ge 1
assert_exit "audit: the portal's chain verifies" 0 "$NTA_BIN" audit verify "$PORTAL_DIR/portal-audit.log"
