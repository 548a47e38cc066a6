#!/usr/bin/env bash
# 52-exim-portal: non_compliant = "portal" on real Exim 4.96 with the shipped exim/
# fragments (lib-exim.sh): the nta7516_portal router and transport deliver over LMTP to
# the real `nta7516-milter portal`, and the portal's own notification leaves by the
# ordinary route because Exim's acl_not_smtp (nta7516-milter-not-smtp.acl) recognises it.
#
# The daemon runs with [policy] non_compliant = "portal"; the portal listens for LMTP on
# 127.0.10.1:7524 (SQLite store) and submits its notifications with the sendmail command,
# here a wrapper that runs the lab's Exim with -C (so the caller is root, and the lab's
# copy of nta7516-milter-not-smtp.acl names root as the portal's user). Exim only queues (queue_only); the case delivers each
# message with -M. Evidence: Exim's mainlog (R= router, T= transport), the portal's audit
# file, the receivers' maildirs.
#
# Cases: a secure message with X-NTA7516-Phone and an attachment for a non-compliant
# domain -> nta7516_portal over LMTP, stored (portal_stored), never at the domain's MX;
# the notification -> nta7516_standard to the domain's MX, DKIM-valid, content-free, no
# mark, no phone number; the same mark from a local user who is not the portal's (a
# configuration variant whose acl_not_smtp names nobody, so root is "another user") or
# from a trusted SMTP client is not honoured (nta7516_portal, never standard); the portal
# stopped -> deferred and kept, delivered after it is back; the portal submitting by SMTP
# with its login (submit_auth, nta7516-milter.authenticators) -> its notification by
# nta7516_standard, and the login's abuse (a wrong password, the right one from a client
# that is not a login host, a login without the mark); a unix socket ([portal] lmtp =
# "unix:...") -> nta7516_portal_unix.
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"
# shellcheck source-path=SCRIPTDIR source=lib-exim.sh
. "$E2E_DIR/lib-exim.sh"

ex_lab_up fallback

P="$LAB/exim-portal"
rm -rf "$P"
mkdir -p "$P"
PORTAL_FROM=portaal@sender.lab.test
PUBLIC_URL=https://portaal.sender.lab.test
"$NTA_BIN" portal keygen --out "$P/portal.key" >"$LAB/log/exim-portal-keygen.out" 2>&1 ||
    e2e_die "portal keygen failed: $(cat "$LAB/log/exim-portal-keygen.out")"
head -c 32 /dev/urandom >"$P/mail.key"
chmod 600 "$P/mail.key"
printf 'lab-token\n' >"$P/sms.token"
# the portal's sendmail: the lab's Exim (its configuration is given with -C)
cat >"$P/sendmail" <<EOF
#!/bin/sh
exec "$EX_BIN" -C "$(ex_conf)" "\$@"
EOF
chmod 755 "$P/sendmail"

# portal_toml LMTP [smtp] : the [portal] section with the given intake socket; with
# "smtp" the portal submits by SMTP to Exim and logs in (submit, submit_auth), else with
# the sendmail wrapper
portal_toml() {
    local submit="sendmail = \"$P/sendmail\""
    [ "${2:-}" = smtp ] && submit=$(printf 'submit = "inet:%s:25"\nsubmit_auth = true' "$EX_ADDR")
    cat <<EOF

[portal]
listen = "inet:$PF_INT:7580"
public_url = "$PUBLIC_URL"
lmtp = "$1"
store = "sqlite:$P/portal.db"
key_file = "$P/portal.key"
from = "$PORTAL_FROM"
organisation = "Lab Ziekenhuis"
mail_key = "$P/mail.key"
audit_file = "$P/portal-audit.log"
$submit

[portal.sms]
provider = "webhook"
url = "https://sms.lab.test/send"
token_file = "$P/sms.token"
EOF
}
ex_policy portal "$(portal_toml "inet:$PF_INT:7524")"

portal_start() {
    lab_bg exim-portal "$NTA_BIN" portal --config "$NTA_DAEMON_CONFIG"
    wait_for "the portal answers LMTP on $PF_INT:7524" 50 0.2 \
        ip netns exec "$NETNS" bash -c "exec 3<>/dev/tcp/$PF_INT/7524" ||
        e2e_die "the portal does not listen (see $LAB/log/exim-portal.out)"
}
portal_down() {
    lab_stop exim-portal
    ex_lab_down
}
trap portal_down EXIT
portal_start

# shellcheck disable=SC2016 # Exim expansions, not shell
assert_eq "readsocket: a non-compliant recipient goes to the portal's LMTP socket" \
    "36:OK nta-portal:inet:[$PF_INT]:7524," \
    "$(ex_exim -be '${readsocket{inet:127.0.10.1:7517}{${strlen:route u@notlsa.lab.test}:route u@notlsa.lab.test,}{5s}{}{TEMP readsocket failed}}' 2>&1)"

stored() { grep -c '"event_type":"portal_stored"' "$P/portal-audit.log" 2>/dev/null || true; }
# queued_from SENDER : the id of the newest message Exim took from SENDER
queued_from() {
    ex_logline "^[0-9-]+ [0-9:]+ [0-9A-Za-z-]+ <= $1 " | tail -n 1 | awk '{ print $3 }'
}

# queued_for RCPT : the id of the newest queued message for RCPT (exim -bp; the portal
# also submits a receipt to the sender right after the notification)
queued_for() {
    ex_exim -bp 2>/dev/null |
        awk -v r="$1" '$3 ~ /^[0-9A-Za-z]+-[0-9A-Za-z]+-[0-9A-Za-z]+$/ { id = $3 } $1 == r { print id }' |
        tail -n 1
}

# --- secure mail with X-NTA7516-Phone and an attachment -> the portal -------------------------
t=$(pf_token)
r="p$(pf_token)@notlsa.lab.test"
printf 'bijlage %s\n' "$t" >"$P/attachment-$t.txt"
before=$(stored)
ex_accepted "portal: secure message with X-NTA7516-Phone and an attachment accepted" int "$t" \
    --to "$r" --add-header "X-NTA7516-Phone: +31612345678" --attach "@$P/attachment-$t.txt"
id=$EX_ID
ex_assert_log "portal: delivered by nta7516_portal over LMTP to the portal" \
    "$id => $r R=nta7516_portal T=nta7516_portal H=$PF_INT \[$PF_INT\] C=\"250 "
wait_for "the portal audited the message" 50 0.1 sh -c "[ \$(grep -c '\"event_type\":\"portal_stored\"' '$P/portal-audit.log' 2>/dev/null) -gt $before ]" || true
assert_eq "portal: stored once (portal_stored)" $((before + 1)) "$(stored)"
assert_true "portal: no longer in Exim's queue" ex_gone "$id"
pf_assert_count "portal: the message itself never reached the domain's MX" 0 pfc "$t"

# --- the portal's notification: acl_not_smtp -> the ordinary route ----------------------------
n=""
wait_for "the portal submitted its notification to Exim" 50 0.2 \
    sh -c "grep -Eq ' <= $PORTAL_FROM U=root P=local ' '$(ex_log)'" || true
is_queued_for() { [ -n "$(queued_for "$1")" ]; }
wait_for "the notification is queued for $r" 50 0.2 is_queued_for "$r" || true
n=$(queued_for "$r")
if assert_match "notification: taken in locally from the portal (P=local)" '.' "$n"; then
    ex_deliver "$n"
    ex_assert_log "notification: delivered by nta7516_standard (the portal's own mail)" \
        "$n => $r R=nta7516_standard T=nta7516_standard H=mx\.notlsa\.lab\.test "
fi
if pf_assert_mail "notification: the domain's receiver (pfc) got it" pfc "$r" "$r"; then
    f=$PF_FILE
    assert_eq "notification: DKIM-valid (dkimverify)" "signature ok" "$(pf_dkimverify "$f")"
    assert_eq "notification: classified standard" standard "$(pf_hdr "$f" X-NTA7516-Classification)"
    assert_eq "notification: the mark never leaves" 0 "$(grep -ic '^X-NTA7516-Portal-Mark' "$f")"
    assert_match "notification: one link to public_url" "$PUBLIC_URL/m/[A-Za-z0-9_-]{43}" "$(cat "$f")"
    assert_eq "notification: content-free (no subject, body or attachment text)" 0 "$(grep -c "$t" "$f")"
    assert_eq "notification: no phone number" 0 "$(grep -c '31612345678' "$f")"
fi

# --- the mark from another local user: not the portal's mail ---------------------------------
t=$(pf_token)
r2="q$(pf_token)@notlsa.lab.test"
msg=$(printf 'From: %s\nTo: %s\nSubject: e2e %s\nMessage-ID: <%s@sender.lab.test>\nX-NTA7516-Portal-Mark: v1 AAAA\n\nlocal %s\n' \
    "$PORTAL_FROM" "$r2" "$t" "$t" "$t")
# the same configuration, with an acl_not_smtp that names another user as the portal's
other="$(ex_dir)/exim4-otheruser.conf"
sed 's/{root}/{nobody}/' "$(ex_dir)/nta7516-milter-not-smtp.acl" >"$(ex_dir)/not-smtp-otheruser.acl"
sed "s|^NTA7516_NOT_SMTP_ACL = .*|NTA7516_NOT_SMTP_ACL = $(ex_dir)/not-smtp-otheruser.acl|" "$(ex_conf)" >"$other"
assert_eq "other user: the variant differs in the ACL's path only" "" \
    "$(diff "$(ex_conf)" "$other" | grep '^>' | grep -v '^> NTA7516_NOT_SMTP_ACL = ')"
printf '%s\n' "$msg" | ex_exim -C "$other" -f "$PORTAL_FROM" -t >"$LAB/out/exim-local-$t.out" 2>&1
m=$(queued_from "$PORTAL_FROM")
if assert_true "other user: a new local message was queued" test -n "$m" -a "$m" != "$n"; then
    ex_deliver "$m"
    # the portal refuses mail from its own address (550): never stored, never sent in clear
    ex_assert_log "other user: still secure (nta7516_portal, never the ordinary route)" "$m (=>|\*\*) $r2 R=nta7516_portal "
    ex_assert_nolog "other user: not delivered by nta7516_standard" "$m => $r2 R=nta7516_standard"
fi
pf_assert_count "other user: nothing at the domain's MX" 0 pfc "$t"

# --- the mark from a trusted SMTP client: the data ACL does not honour it ----------------------
t=$(pf_token)
r3="s$(pf_token)@notlsa.lab.test"
ex_accepted "smtp mark: message with a portal mark from the internal client accepted" int "$t" \
    --to "$r3" --add-header "X-NTA7516-Portal-Mark: v1 AAAA" --add-header "X-NTA7516-Phone: +31612345678"
ex_assert_log "smtp mark: still secure (nta7516_portal)" "$EX_ID => $r3 R=nta7516_portal "
pf_assert_count "smtp mark: nothing at the domain's MX" 0 pfc "$t"

# --- a filter that exits at once without reading (e.g. an option the binary does not know) -
# Exim must not pass on what little it wrote (its usage text) as the message.
cat >"$P/badfilter" <<'EOF2'
#!/bin/sh
echo "error: unexpected argument" >&2
exit 2
EOF2
chmod 755 "$P/badfilter"
bad="$(ex_dir)/exim4-badfilter.conf"
sed "s|^NTA7516_BIN = .*|NTA7516_BIN = $P/badfilter|" "$(ex_conf)" >"$bad"
before=$(stored)
for x in "notlsa.lab.test nta7516_portal" "nta.lab.test nta7516_dane"; do
    read -r dom router <<<"$x"
    t=$(pf_token)
    r="x$(pf_token)@$dom"
    EX_QUEUE_ONLY=1 ex_accepted "early filter exit: accepted for $dom" int "$t" --to "$r" \
        --add-header "X-NTA7516-Phone: +31612345678"
    q=$EX_ID
    run_in_lab_resolv timeout 120 "$EX_BIN" -C "$bad" -M "$q" >>"$LAB/out/exim-M-$q.out" 2>&1 || true
    ex_assert_log "early filter exit: $router defers (transport filter process failed)" \
        "$q == $r R=$router T=$router defer .*transport filter process failed"
    assert_true "early filter exit: still queued ($dom)" ex_queued "$q"
    ex_remove "$q"
done
assert_eq "early filter exit: the portal stored nothing" "$before" "$(stored)"
pf_assert_count "early filter exit: nothing reached the DANE MX" 0 pfb "error: unexpected argument"

# --- the filter fails (its configuration unreadable): deferred, never stored ---------------
# (what an LMTP server has taken cannot be taken back, so the filter's failure must stop the
# delivery before the final dot, as on the SMTP transports)
filter_fails() { # DESC_PREFIX ROUTER
    local t r q before
    chmod 600 "$NTA_DAEMON_CONFIG"
    t=$(pf_token)
    r="f$(pf_token)@notlsa.lab.test"
    before=$(stored)
    ex_accepted "$1: message accepted" int "$t" --to "$r" --add-header "X-NTA7516-Phone: +31612345678"
    q=$EX_ID
    ex_assert_log "$1: the delivery is deferred (transport filter failed)" \
        "$q == $r R=$2 T=$2 defer .*transport filter process failed"
    assert_true "$1: still queued" ex_queued "$q"
    assert_eq "$1: nothing stored" "$before" "$(stored)"
    chmod 640 "$NTA_DAEMON_CONFIG"
    ex_deliver "$q"
    ex_assert_log "$1 fixed: delivered on the next attempt" "$q => ([^ ]+ <)?$r>? R=$2 T=$2 "
    assert_eq "$1 fixed: stored once" $((before + 1)) "$(stored)"
}
filter_fails "filter failure (LMTP over TCP)" nta7516_portal

# --- the portal stopped: deferred and kept, delivered once it is back --------------------------
lab_stop exim-portal
t=$(pf_token)
r4="d$(pf_token)@notlsa.lab.test"
before=$(stored)
ex_accepted "portal down: message accepted" int "$t" --to "$r4" --add-header "X-NTA7516-Phone: +31612345678"
id=$EX_ID
ex_assert_log "portal down: deferred by nta7516_portal" "$id == $r4 R=nta7516_portal T=nta7516_portal "
assert_true "portal down: still queued" ex_queued "$id"
portal_start
ex_deliver "$id"
ex_assert_log "portal back: delivered" "$id => $r4 R=nta7516_portal T=nta7516_portal "
assert_true "portal back: no longer queued" ex_gone "$id"

# --- the portal submits by SMTP and logs in (submit_auth), as the hardened unit does ----------
# nta7516-milter.authenticators: AUTH PLAIN as nta7516-portal, the password checked by the
# daemon; then the data ACL sends the marked notification the ordinary way.
lab_stop exim-portal
ex_policy portal "$(portal_toml "inet:$PF_INT:7524" smtp)"
portal_start
t=$(pf_token)
r6="l$(pf_token)@notlsa.lab.test"
before=$(stored)
ex_accepted "login: secure message for the portal accepted" int "$t" --to "$r6" \
    --add-header "X-NTA7516-Phone: +31612345678"
ex_assert_log "login: delivered by nta7516_portal" "$EX_ID => $r6 R=nta7516_portal T=nta7516_portal "
assert_eq "login: stored" $((before + 1)) "$(stored)"
ex_assert_log "login: the portal logged in and submitted its notification by SMTP" \
    " <= $PORTAL_FROM H=[^ ]* \[$EX_ADDR\] P=esmtpa A=nta7516_portal:nta7516-portal "
wait_for "the notification is queued for $r6" 50 0.2 is_queued_for "$r6" || true
n=$(queued_for "$r6")
if assert_match "login: the notification is queued" '.' "$n"; then
    ex_deliver "$n"
    ex_assert_log "login: the notification went by nta7516_standard (the portal's own mail)" \
        "$n => $r6 R=nta7516_standard T=nta7516_standard H=mx\.notlsa\.lab\.test "
fi
if pf_assert_mail "login: the domain's receiver (pfc) got the notification" pfc "$r6" "$r6"; then
    f=$PF_FILE
    assert_eq "login: DKIM-valid (dkimverify)" "signature ok" "$(pf_dkimverify "$f")"
    assert_eq "login: the mark never leaves" 0 "$(grep -ic '^X-NTA7516-Portal-Mark' "$f")"
    assert_eq "login: content-free" 0 "$(grep -c "$t" "$f")"
fi

# the password, derived independently (HMAC-SHA256 of the fixed text under mail_key,
# base64url without padding): what the portal sent, so the abuse cases below use the real one
pw=$(python3 -c 'import base64,hmac,hashlib,sys
k=open(sys.argv[1],"rb").read()
t=hmac.new(k,b"nta7516-milter portal smtp login v1",hashlib.sha256).digest()
print(base64.urlsafe_b64encode(t).decode().rstrip("="))' "$P/mail.key")
# login_try DESC FROM_ADDR PASSWORD TOKEN RCPT [SWAKS_ARGS...]: swaks logging in as the portal
login_try() {
    local desc=$1 from=$2 pass=$3 tok=$4 rcpt=$5
    shift 5
    run_in_lab timeout 60 swaks --server "$EX_ADDR:25" --local-interface "$from" \
        --helo client.lab.test --from sender@sender.lab.test --to "$rcpt" \
        --header "Subject: e2e $tok" --body "e2e message $tok" --timeout 30 \
        --auth PLAIN --auth-user nta7516-portal --auth-password "$pass" "$@" \
        >"$LAB/out/swaks-login-$tok.out" 2>&1
}
t=$(pf_token)
r7="w$(pf_token)@notlsa.lab.test"
login_try "wrong password" "$EX_ADDR" "${pw%?}x" "$t" "$r7" --add-header "X-NTA7516-Portal-Mark: v1 AAAA"
assert_match "login, wrong password: refused (535)" '<\*\* 535 ' "$(cat "$LAB/out/swaks-login-$t.out")"
assert_eq "login, wrong password: nothing queued" "" "$(queued_for "$r7")"
assert_match "login, wrong password: the daemon said why, without the password" \
    'portal-login with a password that is not the portal' "$(cat "$LAB/log/nta-daemon.out")"
assert_eq "login, wrong password: no password in the daemon's log" 0 "$(grep -c -- "${pw%?}" "$LAB/log/nta-daemon.out")"
t=$(pf_token)
login_try "right password, other client" "$PF_INT" "$pw" "$t" "$r7" --add-header "X-NTA7516-Portal-Mark: v1 AAAA"
assert_match "login from a client that is not a login host: not offered" \
    'not advertise|no auth|not support' "$(cat "$LAB/out/swaks-login-$t.out")"
assert_eq "login from another client: nothing queued" "" "$(queued_for "$r7")"
t=$(pf_token)
if login_try "right password, no mark" "$EX_ADDR" "$pw" "$t" "$r7"; then
    q=$(queued_for "$r7")
    ex_deliver "$q"
    ex_assert_log "logged in, but no mark: still secure (nta7516_portal)" "$q => $r7 R=nta7516_portal "
else
    e2e_fail "logged in without a mark: not accepted" "$(tail -n 8 "$LAB/out/swaks-login-$t.out")"
fi
pf_assert_count "login abuse: nothing at the domain's MX" 0 pfc "$t"

# --- a unix socket ---------------------------------------------------------------------------
lab_stop exim-portal
sock="$P/lmtp.sock"
ex_policy portal "$(portal_toml "unix:$sock")"
lab_bg exim-portal "$NTA_BIN" portal --config "$NTA_DAEMON_CONFIG"
wait_for "the portal's LMTP socket exists" 50 0.2 test -S "$sock" ||
    e2e_fail "the portal made no socket $sock" "$(tail -n 5 "$LAB/log/exim-portal.out")"
# the lmtp transport connects as Debian-exim
chmod 755 "$P"
chmod 666 "$sock" 2>/dev/null || true
t=$(pf_token)
r5="u$(pf_token)@notlsa.lab.test"
before=$(stored)
ex_accepted "unix: message accepted" int "$t" --to "$r5" --add-header "X-NTA7516-Phone: +31612345678"
ex_assert_log "unix: delivered by nta7516_portal_unix" "$EX_ID => ([^ ]+ <)?$r5>? R=nta7516_portal_unix T=nta7516_portal_unix C=\"250 "
assert_eq "unix: stored" $((before + 1)) "$(stored)"

filter_fails "filter failure (LMTP over a unix socket)" nta7516_portal_unix

lab_stop exim-portal
ex_policy fallback
[ "$E2E_FAILED" -eq 0 ] || { ex_dump_logs; tail -n 30 "$LAB/log/exim-portal.out"; }
exit 0
