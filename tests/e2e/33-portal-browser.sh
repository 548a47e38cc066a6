#!/usr/bin/env bash
# 33-portal-browser: the whole recipient flow on real components, from the sender's MTA to
# the recipient's browser.
#
# Same lab as 32-postfix-portal-route (lib-postfix.sh), policy non_compliant = "portal".
# In the lab: the real `nta7516-milter portal` (LMTP on 127.0.10.1:7527, web on
# http://127.0.10.1:7581 = public_url, SQLite, notifications through /usr/sbin/sendmail into
# pfa), in front of its LMTP socket a recording relay (portal_fakes.py tee, 127.0.10.1:7526
# = the [portal] lmtp the route map answers) that keeps the bytes Postfix sent, and a fake
# SMS gateway speaking the `webhook` provider API (portal_fakes.py sms, 127.0.10.1:7590).
# The portal's sendmail is a lab wrapper that keeps a copy of each submission and then runs
# /usr/sbin/sendmail with the same arguments.
#
# Cases: a secure message with an attachment and X-NTA7516-Phone to a non-compliant domain
# goes over LMTP (nta-portal) into the portal; its notification reaches the domain's MX
# (pfc) DKIM-valid with one link; tests/portal_e2e_browser.rs then drives Debian's chromium
# (chromedriver, WebDriver) inside the lab: it opens THAT link, asks for the code, reads it
# from the fake gateway, enters it, sees subject, sender, body and the attachment,
# downloads the PDF (pdftotext), the .eml and the attachment, with axe-core on every page.
# "Byte-identical": the downloaded .eml is compared with the DATA payload that Postfix's
# LMTP client sent (recorded by the relay; dot-stuffing undone, the final "." line
# removed): the message as submitted plus what the milter changed, exactly as delivered
# (the portal only ever removes a [sms:] subject tag, and this message has none).
# The sender gets a receipt (content-free, DKIM-signed, one link: the revoke link); that
# link refuses clients outside [outbound] networks (directly, and through the proxy's
# X-Forwarded-For), a POST without a valid CSRF token and a cross-site POST; the browser,
# after reading, replies through the page (a form with an added field is refused; the
# reply with an attachment reaches the sender only: From the portal with the recipient's
# address as name, Reply-To, In-Reply-To, DKIM-signed, audited); the clinician's answer to
# that reply, without a number, goes into the same thread (the portal takes it in with the
# thread's number; its page says what it answers, seen in a second browser visit); then
# the browser opens the revoke link from inside and withdraws the first message: its link then
# says "withdrawn" (410), the key and the ciphertext are gone from the database, and
# portal_revoked is audited (by link, from the browser's address). With notify_opened the
# sender is told once that the recipient opened the message. A third message is withdrawn
# by the administrator (`portal revoke <Message-ID>`; `portal list` shows it withdrawn;
# audited by the portal's next pass).
# Then ten wrong codes on a second message lock its recipient and the sender gets the
# portal's content-free lock notice (by the same sendmail path, DKIM-signed, audited).
# Last, the portal's own notification, valid mark and all, replayed: from the trusted
# client it is honoured (the control: the mark is valid), from a client that Postfix lets
# relay but that is not in [outbound] networks it is not (the mail goes to the portal,
# which refuses its own mail; nothing in clear at the domain's MX).
# (The portal stopped -> deferred, kept, delivered after the restart: 80-portal-intake.)
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

PY=/usr/bin/python3
FAKES="$E2E_DIR/portal_fakes.py"
P="$LAB/portal-browser"
rm -rf "$P"
mkdir -p "$P/lmtp" "$P/submitted" "$P/work"
TEE_ADDR="$PF_INT:7526"
LMTP_ADDR="$PF_INT:7527"
WEB_ADDR="$PF_INT:7581"
SMS_ADDR="$PF_INT:7590"
PUBLIC_URL="http://$WEB_ADDR"
PORTAL_FROM=portaal@sender.lab.test
ORG="Lab Ziekenhuis Browser"
PHONE=+31612345678
MASKED="06-****5678"

# The browser test binary (built here unless NTA_E2E_BROWSER_TEST names one).
browser_test=${NTA_E2E_BROWSER_TEST:-}
if [ -z "$browser_test" ]; then
    if command -v cargo >/dev/null 2>&1; then
        browser_test=$(cd "$E2E_REPO" && cargo test --locked --test portal_e2e_browser --no-run \
            --message-format=json 2>"$LAB/log/portal-browser-build.out" |
            jq -r 'select(.reason == "compiler-artifact" and .executable != null and .target.name == "portal_e2e_browser") | .executable' |
            tail -n 1)
    fi
    [ -n "$browser_test" ] && [ -x "$browser_test" ] ||
        e2e_die "cannot build tests/portal_e2e_browser.rs (cargo test --no-run; see $LAB/log/portal-browser-build.out), or set NTA_E2E_BROWSER_TEST"
fi

pf_lab_up fallback

"$NTA_BIN" portal keygen --out "$P/portal.key" >"$LAB/log/portal-browser-keygen.out" 2>&1 ||
    e2e_die "portal keygen failed: $(cat "$LAB/log/portal-browser-keygen.out")"
head -c 32 /dev/urandom >"$P/mail.key"
chmod 600 "$P/mail.key"
printf 'lab-sms-token\n' >"$P/sms.token"
cat >"$P/sendmail" <<EOF
#!/bin/sh
# lab wrapper: keep what the portal submits, then submit it with the real sendmail
f="$P/submitted/\$(date +%s%N).eml"
cat >"\$f" || exit 75
exec /usr/sbin/sendmail "\$@" <"\$f"
EOF
chmod 755 "$P/sendmail"
PORTAL_TOML=$(
    cat <<EOF

[portal]
listen = "inet:$WEB_ADDR"
public_url = "$PUBLIC_URL"
lmtp = "inet:$TEE_ADDR"
store = "sqlite:$P/portal.db"
key_file = "$P/portal.key"
from = "$PORTAL_FROM"
organisation = "$ORG"
mail_key = "$P/mail.key"
audit_file = "$P/portal-audit.log"
sendmail = "$P/sendmail"
notify_opened = true

[portal.sms]
provider = "webhook"
url = "http://$SMS_ADDR/sms"
token_file = "$P/sms.token"
EOF
)
nta_policy portal "$PORTAL_TOML"
# the portal itself listens behind the relay: the same configuration, its own lmtp
sed "s|^lmtp = \"inet:$TEE_ADDR\"|lmtp = \"inet:$LMTP_ADDR\"|" "$NTA_DAEMON_CONFIG" >"$P/portal.toml"
assert_exit "the portal's configuration checks" 0 "$NTA_BIN" check-config "$P/portal.toml"

tcp_up() { ip netns exec "$NETNS" timeout 2 bash -c "exec 3<>/dev/tcp/${1%:*}/${1#*:}" 2>/dev/null; }
lab_bg portal-sms-fake "$PY" "$FAKES" sms "$SMS_ADDR" "$P/sms.jsonl"
lab_bg portal-lmtp-tee "$PY" "$FAKES" tee "$TEE_ADDR" "$LMTP_ADDR" "$P/lmtp"
lab_bg portal-browser env MAIL_CONFIG="$(pf_etc pfa)" "$NTA_BIN" portal --config "$P/portal.toml"
portal_down() {
    lab_stop portal-browser
    lab_stop portal-lmtp-tee
    lab_stop portal-sms-fake
    pf_lab_down
}
trap portal_down EXIT
for a in "$SMS_ADDR" "$TEE_ADDR" "$LMTP_ADDR" "$WEB_ADDR"; do
    wait_for "$a listens" 100 0.1 tcp_up "$a" ||
        e2e_die "nothing listens on $a (see $LAB/log/portal-*.out)"
done

# notification FILE : the one http(s) URL in the decoded text/plain part
notice_url() {
    "$PY" "$E2E_DIR/py/mail_urls.py" "$1"
}
portal_events() { grep -c "\"event_type\":\"$1\"" "$P/portal-audit.log" 2>/dev/null || true; }

# --- a secure message with an attachment -> LMTP -> the portal -> the notification -------
# (the recipient has its own token: the message's token t is only in its subject and body)
t=$(pf_token)
r="b$(pf_token)@notlsa.lab.test"
printf 'Uitslag bijlage %s\nregel twee\n' "$t" >"$P/uitslag.txt"
mid1="m$(pf_token)@sender.lab.test"
pf_accepted "message: secure, with an attachment and X-NTA7516-Phone, to a non-compliant domain" int "$t" \
    --to "$r" --add-header "X-NTA7516-Phone: $PHONE" --header "Message-Id: <$mid1>" \
    --attach-type text/plain --attach-name uitslag.txt --attach "@$P/uitslag.txt"
q=$PF_QID
pf_assert_log "message: delivered over LMTP by nta-portal, 250 after the commit" pfa \
    "postfix/nta-portal/lmtp\[[0-9]+\]: $q: to=<$r>, relay=[^,]*7526, .*status=sent \(250 2\.0\.0 "
pf_assert_count "message: never at the domain's MX in clear" 0 pfc "$t"
assert_true "message: the relay recorded exactly one DATA payload with it" \
    "$PY" "$FAKES" data "$P/lmtp" "$t" "$P/lmtp-data.eml"
assert_true "message: what Postfix handed over has the attachment and the number header" \
    sh -c "grep -q 'filename=\"\\?uitslag.txt' '$P/lmtp-data.eml' && grep -qi '^X-NTA7516-Phone: ' '$P/lmtp-data.eml'"
link=""
if pf_assert_mail "notification: the domain's receiver (pfc) got it" pfc "$r" "$r"; then
    f=$PF_FILE
    assert_eq "notification: DKIM-valid (dkimverify)" "signature ok" "$(pf_dkimverify "$f")"
    assert_eq "notification: content-free (no subject or body text)" 0 "$(grep -c "$t" "$f")"
    link=$(notice_url "$f")
    assert_match "notification: one link, public_url + /m/<token>" "^$PUBLIC_URL/m/[A-Za-z0-9_-]{43}\$" "$link"
fi

# --- the sender's receipt: content-free, one link (the revoke link) -----------------------
revoke=""
if pf_assert_mail "receipt: it reached the sender's mailbox (pfa)" pfa "$mid1" sender@sender.lab.test; then
    f=$PF_FILE
    assert_match "receipt: from the portal's address" "<$PORTAL_FROM>" "$(pf_hdr "$f" From)"
    assert_match "receipt: Dutch and English, names the recipient and the Message-ID" \
        "Beste afzender.*$r.*Kenmerk: <$mid1>.*Dear sender" "$(tr '\n' ' ' <"$f")"
    assert_eq "receipt: content-free (no subject or body text of the message)" 0 "$(grep -c "$t" "$f")"
    assert_eq "receipt: DKIM-signed by the milter (dkimverify)" "signature ok" "$(pf_dkimverify "$f")"
    revoke=$(notice_url "$f")
    assert_match "receipt: one link, public_url + /r/<token>" "^$PUBLIC_URL/r/[A-Za-z0-9_-]{43}\$" "$revoke"
fi
wait_for "the portal audited the receipt" 50 0.2 grep -q '"event_type":"portal_receipt_sent"' "$P/portal-audit.log" || true

# http_code SRC URL [CURL_ARGS...] : the HTTP status a client at address SRC gets
http_code() {
    local src=$1 url=$2
    shift 2
    run_in_lab curl -s -o /dev/null -w '%{http_code}' --max-time 10 --interface "$src" "$@" "$url"
}
if [ -n "$revoke" ]; then
    csrf=$(run_in_lab curl -s --max-time 10 --interface "$PF_INT" "$revoke" |
        sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1)
    assert_match "revoke link from inside: the form with its CSRF token (a GET changes nothing)" '.' "$csrf"
    assert_eq "revoke link from an outside address: 403 for GET, and for a POST with a valid token" "403 403" \
        "$(http_code "$PF_EXT" "$revoke") $(http_code "$PF_EXT" "$revoke" -X POST --data "csrf=$csrf" -H "Origin: $PUBLIC_URL")"
    assert_eq "revoke link through the proxy for an outside client (X-Forwarded-For ends with it): 403" 403 \
        "$(http_code "$PF_INT" "$revoke" -X POST --data "csrf=$csrf" -H "Origin: $PUBLIC_URL" -H 'X-Forwarded-For: 127.0.10.1, 192.0.2.7')"
    assert_eq "revoke: from inside, a POST with a forged CSRF token and a cross-site POST are refused" "403 403" \
        "$(http_code "$PF_INT" "$revoke" -X POST --data csrf=forged -H "Origin: $PUBLIC_URL") $(http_code "$PF_INT" "$revoke" -X POST --data "csrf=$csrf" -H 'Origin: http://evil.example')"
    forged="${revoke%?}A"
    [ "$forged" != "$revoke" ] || forged="${revoke%?}B"
    assert_eq "revoke: a token with a wrong MAC is unknown (404)" 404 "$(http_code "$PF_INT" "$forged")"
    assert_eq "revoke: after all that the message is still there (the recipient's link: 200)" 200 \
        "$(http_code "$PF_INT" "$link")"
fi

# --- a third message, withdrawn by the administrator ----------------------------------------
t3=$(pf_token)
r3="v$(pf_token)@notlsa.lab.test"
mid3="m$(pf_token)@sender.lab.test"
if pf_accepted "admin revoke: a third secure message for the portal accepted" int "$t3" \
    --to "$r3" --add-header "X-NTA7516-Phone: $PHONE" --header "Message-Id: <$mid3>" &&
    pf_assert_mail "admin revoke: its notification reached pfc" pfc "$r3" "$r3"; then
    link3=$(notice_url "$PF_FILE")
    assert_exit "admin revoke: an unknown Message-ID exits 1" 1 \
        "$NTA_BIN" portal revoke "<nobody-$t3@sender.lab.test>" --config "$P/portal.toml"
    rc=0
    out=$("$NTA_BIN" portal revoke "<$mid3>" --config "$P/portal.toml" 2>&1) || rc=$?
    assert_eq "admin revoke: portal revoke <Message-ID> exits 0" 0 "$rc"
    assert_match "admin revoke: it says the message was withdrawn (key destroyed)" "^withdrawn .*$r3.*key destroyed" "$out"
    assert_match "admin revoke: portal list shows it withdrawn" "^[0-9a-f]{32}  revoked .*$r3.*<$mid3>" \
        "$("$NTA_BIN" portal list --config "$P/portal.toml" 2>&1)"
    assert_eq "admin revoke: the recipient's link is gone (410)" 410 "$(http_code "$PF_INT" "$link3")"
fi

# --- the address book: a bad CSV imports nothing; a known recipient needs no number ------
rc_="$(pf_token)"
rb="c$rc_@notlsa.lab.test"
printf 'address,number\n%s,06-8765 4321\nnot-an-address,0612345678\nx@notlsa.lab.test,020-1234567\n' "$rb" >"$P/contacts-bad.csv"
rc=0
out=$("$NTA_BIN" portal contacts import "$P/contacts-bad.csv" --config "$P/portal.toml" 2>&1) || rc=$?
assert_eq "contacts: a CSV with bad rows exits 2" 2 "$rc"
assert_match "contacts: every bad row named by its line (address, not mobile)" \
    'line 3: "not-an-address" is not one e-mail address.*line 4: "020-1234567": not a mobile number.*nothing imported' \
    "$(printf '%s' "$out" | tr '\n' ' ')"
assert_eq "contacts: nothing was imported" "" "$("$NTA_BIN" portal contacts list --config "$P/portal.toml" 2>&1)"
printf 'address,number\n%s,06-8765 4321\n' "$rb" >"$P/contacts.csv"
assert_exit "contacts: the good CSV imports" 0 "$NTA_BIN" portal contacts import "$P/contacts.csv" --config "$P/portal.toml"
assert_exit "contacts: add (a Dutch national number, normalised)" 0 \
    "$NTA_BIN" portal contacts add "Tmp$rc_@notlsa.lab.test" "0611112222" --config "$P/portal.toml"
assert_eq "contacts: list, E.164" "$rb,+31687654321 tmp$rc_@notlsa.lab.test,+31611112222" \
    "$("$NTA_BIN" portal contacts list --config "$P/portal.toml" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
assert_exit "contacts: remove" 0 "$NTA_BIN" portal contacts remove "tmp$rc_@notlsa.lab.test" --config "$P/portal.toml"
assert_exit "contacts: remove again: not in the book (exit 1)" 1 \
    "$NTA_BIN" portal contacts remove "tmp$rc_@notlsa.lab.test" --config "$P/portal.toml"
assert_exit "contacts: add refuses a number that is not mobile (exit 2)" 2 \
    "$NTA_BIN" portal contacts add "$rb" "020-1234567" --config "$P/portal.toml"
tb=$(pf_token)
if pf_accepted "contacts: a secure message to the known recipient, no number in it, accepted" int "$tb" --to "$rb"; then
    q=$PF_QID
    pf_assert_log "contacts: taken in by the portal (250) with the address book's number" pfa \
        "postfix/nta-portal/lmtp\[[0-9]+\]: $q: to=<$rb>, .*status=sent \(250 2\.0\.0 "
    if pf_assert_mail "contacts: the notification reached pfc" pfc "$rb" "$rb"; then
        assert_true "contacts: it names the book's number (masked)" grep -q '06-\*\*\*\*4321' "$PF_FILE"
    fi
fi

# --- no number anywhere: the message waits, the sender gives the number by a one-time link -
rw="w$(pf_token)@notlsa.lab.test"
tw=$(pf_token)
nlink=""
if pf_accepted "waiting: a secure message to an unknown recipient, no number, accepted" int "$tw" --to "$rw"; then
    q=$PF_QID
    pf_assert_log "waiting: taken in by the portal (250), not bounced" pfa \
        "postfix/nta-portal/lmtp\[[0-9]+\]: $q: to=<$rw>, .*status=sent \(250 2\.0\.0 "
    assert_match "waiting: portal list shows it waiting" "^[0-9a-f]{32}  waiting .*$rw" \
        "$("$NTA_BIN" portal list --config "$P/portal.toml" 2>&1)"
    if pf_assert_mail "waiting: the sender is asked for the number (pfa)" pfa "$rw wacht" sender@sender.lab.test; then
        f=$PF_FILE
        assert_eq "waiting: the request is content-free and DKIM-signed" "0 signature ok" \
            "$(grep -c "$tw" "$f") $(pf_dkimverify "$f")"
        nlink=$(notice_url "$f")
        assert_match "waiting: one link, public_url + /n/<token>" "^$PUBLIC_URL/n/[A-Za-z0-9_-]{43}\$" "$nlink"
    fi
fi
if [ -n "$nlink" ]; then
    assert_eq "number link from an outside address: 403" 403 "$(http_code "$PF_EXT" "$nlink")"
    ncsrf=$(run_in_lab curl -s --max-time 10 --interface "$PF_INT" "$nlink" |
        sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1)
    assert_match "number link from inside: the form with its CSRF token" '.' "$ncsrf"
    assert_eq "number: a landline number is refused (400), a forged CSRF token too (403)" "400 403" \
        "$(http_code "$PF_INT" "$nlink" -X POST --data "csrf=$ncsrf&number=020-1234567" -H "Origin: $PUBLIC_URL") $(http_code "$PF_INT" "$nlink" -X POST --data "csrf=forged&number=0611223344" -H "Origin: $PUBLIC_URL")"
    assert_eq "number: a mobile number (kept in the address book) is stored" 200 \
        "$(http_code "$PF_INT" "$nlink" -X POST --data "csrf=$ncsrf&number=06-1122%203344&remember=1" -H "Origin: $PUBLIC_URL")"
    assert_eq "number: the link replayed is spent (410 for POST and GET)" "410 410" \
        "$(http_code "$PF_INT" "$nlink" -X POST --data "csrf=$ncsrf&number=0611223344" -H "Origin: $PUBLIC_URL") $(http_code "$PF_INT" "$nlink")"
    assert_match "number: now in the address book" "^$rw,\+31611223344\$" \
        "$("$NTA_BIN" portal contacts list --config "$P/portal.toml" 2>&1)"
fi
# A third: the sender answers the request by mail, the number in the subject.
ry="y$(pf_token)@notlsa.lab.test"
ty=$(pf_token)
if pf_accepted "number by reply: another message without a number accepted" int "$ty" --to "$ry" &&
    pf_assert_mail "number by reply: its request reached the sender" pfa "$ry wacht" sender@sender.lab.test; then
    askmid=$(pf_hdr "$PF_FILE" Message-ID)
    t1=$(pf_token)
    pf_accepted "number by reply: a reply that answers no request, accepted by pfa" int "$t1" \
        --to "$PORTAL_FROM" --header "In-Reply-To: <nothing-$t1@sender.lab.test>" \
        --header "Subject: Re: Mobiel nummer nodig 06-22334455"
    pf_assert_log "number by reply: ... refused by the portal (550 5.7.1), the sender gets the bounce" pfa \
        "postfix/nta-portal/lmtp\[[0-9]+\]: $PF_QID: to=<$PORTAL_FROM>, .*status=bounced .*550 5\.7\.1 "
    t2=$(pf_token)
    pf_accepted "number by reply: the reply to the request, number in the subject, accepted" int "$t2" \
        --to "$PORTAL_FROM" --header "In-Reply-To: $askmid" \
        --header "Subject: Re: Mobiel nummer nodig / Mobile number needed 06-2233 4455"
    pf_assert_log "number by reply: routed to the portal (nta-portal) and stored (250)" pfa \
        "postfix/nta-portal/lmtp\[[0-9]+\]: $PF_QID: to=<$PORTAL_FROM>, .*status=sent \(250 2\.0\.0 Nummer opgeslagen"
fi
# A second one whose wait runs out: its start moved back past number_wait (3 days).
rx="x$(pf_token)@notlsa.lab.test"
tx=$(pf_token)
if pf_accepted "not delivered: another message without a number accepted" int "$tx" --to "$rx" &&
    pf_assert_mail "not delivered: its request reached the sender" pfa "$rx wacht" sender@sender.lab.test; then
    "$PY" - "$P/portal.db" "$rx" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE portal_waiting SET since = 1 WHERE address = ?", (sys.argv[2],))
db.commit()
PYEOF
fi

# --- a second message, whose recipient will get locked: the first five wrong codes -------
t2=$(pf_token)
r2="l$(pf_token)@notlsa.lab.test"
link2=""
lock_t0=$SECONDS
if pf_accepted "lock: a second secure message for the portal accepted" int "$t2" \
    --to "$r2" --add-header "X-NTA7516-Phone: $PHONE" &&
    pf_assert_mail "lock: its notification reached pfc" pfc "$r2" "$r2"; then
    link2=$(notice_url "$PF_FILE")
    out=$(run_in_lab "$PY" "$FAKES" wrong-codes "$link2" "$P/sms.jsonl" 1 2>&1)
    lock_t0=$SECONDS
    assert_eq "lock: a code, then five wrong ones (the code is void, no lock yet)" \
        "send 200 code 200 code 200 code 200 code 200 code 200 not locked" "$(printf '%s' "$out" | tr '\n' ' ')"
fi

# --- the browser follows that link, reads, downloads, replies -----------------------------
tr=$(pf_token)
printf 'Bijlage bij het antwoord %s\n' "$tr" >"$P/antwoord.txt"
jq -n --arg link "$link" --arg sms_log "$P/sms.jsonl" --arg phone "$PHONE" --arg masked "$MASKED" \
    --arg organisation "$ORG" --arg sender sender@sender.lab.test --arg subject "e2e $t" \
    --arg body "e2e message $t" --arg attachment_name uitslag.txt \
    --arg attachment_file "$P/uitslag.txt" --arg eml "$P/lmtp-data.eml" --arg work "$P/work" \
    --arg reply_text "Antwoord van de patient $tr" --arg reply_file "$P/antwoord.txt" \
    '$ARGS.named' >"$P/browser.json"
rc=0
ip netns exec "$NETNS" env NTA_E2E_PORTAL="$P/browser.json" RUST_BACKTRACE=0 \
    timeout -k 5 240 "$browser_test" --ignored --exact e2e_notification_link_in_a_real_browser \
    --test-threads=1 >"$LAB/log/portal-browser-test.out" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && grep -q '^test result: ok. 1 passed' "$LAB/log/portal-browser-test.out"; then
    e2e_pass "browser: link from the delivered notification, code by SMS, body, attachment, PDF text, .eml byte-identical to the LMTP DATA, a reply form with an added field refused, a reply with an attachment sent; axe-core clean on every page"
else
    e2e_fail "browser: tests/portal_e2e_browser.rs exited $rc (see $LAB/log/portal-browser-test.out)" \
        "$(grep -v '^\s*$' "$LAB/log/portal-browser-test.out" | tail -n 25)"
fi
assert_eq "browser: the fake gateway got two SMS (the lock's first and the browser's), to the number" \
    "2 $PHONE $PHONE" "$(jq -rs '"\(length) \(.[0].body.to) \(.[1].body.to)"' "$P/sms.jsonl" 2>/dev/null)"
assert_eq "browser: the SMS request carried the token from token_file" "Bearer lab-sms-token" \
    "$(jq -r '.authorization' "$P/sms.jsonl" 2>/dev/null | head -n 1)"
assert_eq "audit: three downloads (pdf, eml, part)" "eml part pdf" \
    "$(grep '"event_type":"portal_downloaded"' "$P/portal-audit.log" | jq -r '.detail.what' 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//')"

# --- the reply: to the sender only, from the portal, threaded, DKIM-signed ---------------
reply_mid=""
if pf_assert_mail "reply: it reached the sender's mailbox (pfa)" pfa "$tr" sender@sender.lab.test; then
    f=$PF_FILE
    assert_match "reply: From the portal's address with the recipient's address as name" \
        "$r via $ORG.*<$PORTAL_FROM>" "$(pf_hdr "$f" From)"
    assert_eq "reply: Reply-To the recipient, In-Reply-To the original" "<$r> <$mid1>" \
        "$(pf_hdr "$f" Reply-To) $(pf_hdr "$f" In-Reply-To)"
    assert_eq "reply: Subject Re: the original's" "Re: e2e $t" "$(pf_hdr "$f" Subject)"
    assert_eq "reply: DKIM-signed by the milter (dkimverify)" "signature ok" "$(pf_dkimverify "$f")"
    assert_true "reply: the attachment (antwoord.txt) is in it" grep -q 'antwoord.txt' "$f"
    assert_eq "reply: the mark never leaves" 0 "$(pf_hdr "$f" X-NTA7516-Portal-Mark | grep -c . || true)"
    reply_mid=$(pf_hdr "$f" Message-ID)
fi
assert_eq "reply: one copy, to the sender only (none at the domain's MX)" "1 0" \
    "$(pf_count pfa "$tr") $(pf_count pfc "$tr")"
assert_eq "audit: one portal_replied (the refused form sent nothing), 1 attachment, to the sender" \
    "1 1 sender@sender.lab.test" \
    "$(portal_events portal_replied) $(grep '"event_type":"portal_replied"' "$P/portal-audit.log" | jq -r '"\(.detail.attachments) \(.detail.to)"' 2>/dev/null)"

# --- the clinician's answer to the reply: no number in it, into the same thread ----------
answer_link=""
ta=$(pf_token)
if [ -n "$reply_mid" ] &&
    pf_accepted "answer: the clinician's answer to the reply (no number, no tag) accepted" int "$ta" \
        --to "$r" --header "In-Reply-To: $reply_mid" --header "References: <$mid1> $reply_mid"; then
    q=$PF_QID
    pf_assert_log "answer: delivered over LMTP to the portal (its number from the thread)" pfa \
        "postfix/nta-portal/lmtp\[[0-9]+\]: $q: to=<$r>, .*status=sent \(250 2\.0\.0 "
    # a function: wait_for must count again on every try (an argument "$(...)" is
    # counted once, before the first)
    answer_noticed() { [ "$(pf_count pfc "$r" "$r")" -ge 2 ]; }
    if wait_for "the answer's notification" 75 0.2 answer_noticed; then
        f=$(pf_files pfc "$r" "$r" | xargs ls -t | head -n 1)
        answer_link=$(notice_url "$f")
    fi
    assert_match "answer: a second notification to the recipient, with its own link" \
        "^$PUBLIC_URL/m/[A-Za-z0-9_-]{43}\$" "$answer_link"
fi

# --- the second visit: the answer, then the sender withdraws the first message ------------
jq -n --arg answer_link "$answer_link" --arg answer_subject "e2e $ta" --arg sms_log "$P/sms.jsonl" \
    --arg phone "$PHONE" --arg link "$link" --arg revoke "$revoke" --arg recipient "$r" \
    --arg subject "e2e $t" --arg work "$P/work2" '$ARGS.named' >"$P/answer.json"
mkdir -p "$P/work2"
rc=0
ip netns exec "$NETNS" env NTA_E2E_PORTAL="$P/answer.json" RUST_BACKTRACE=0 \
    timeout -k 5 240 "$browser_test" --ignored --exact e2e_answer_then_withdraw \
    --test-threads=1 >"$LAB/log/portal-browser-test2.out" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && grep -q '^test result: ok. 1 passed' "$LAB/log/portal-browser-test2.out"; then
    e2e_pass "browser: the answer's page (code by SMS to the thread's number) says what it answers; the receipt's revoke link withdraws the first message and its link says withdrawn; axe-core clean"
else
    e2e_fail "browser (second visit): tests/portal_e2e_browser.rs exited $rc (see $LAB/log/portal-browser-test2.out)" \
        "$(grep -v '^\s*$' "$LAB/log/portal-browser-test2.out" | tail -n 25)"
fi

# --- after the browser: opened notice, withdrawal on record, key and data gone ------------
if pf_assert_mail "opened notice: the sender was told that the recipient opened it" pfa "$r heeft uw beveiligde bericht" sender@sender.lab.test; then
    f=$PF_FILE
    assert_eq "opened notice: one per message (the first and the answer), content-free (no subject or body text, no link), DKIM-signed" "2 0 0 signature ok" \
        "$(pf_count pfa "$r heeft uw beveiligde bericht" sender@sender.lab.test) $(grep -c "$t" "$f") $(grep -c "$PUBLIC_URL" "$f") $(pf_dkimverify "$f")"
fi
assert_eq "audit: portal_opened_notice sent=true, once per message" "true true" \
    "$(grep '"event_type":"portal_opened_notice"' "$P/portal-audit.log" | jq -r '.detail.sent' 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
assert_eq "withdrawn: the recipient's link says so (410)" 410 "$(http_code "$PF_INT" "$link")"
assert_match "audit: portal_revoked by the link, from the browser's (inside) address" '^link 127\.0\.(10\.1|0\.1)$' \
    "$(grep '"event_type":"portal_revoked"' "$P/portal-audit.log" | jq -r 'select(.detail.by == "link") | "\(.detail.by) \(.detail.client_address)"' 2>/dev/null)"
assert_eq "withdrawn: in the database the two messages' keys and ciphertext are gone" "revoked 1 0
revoked 1 0" "$("$PY" - "$P/portal.db" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for state, nokey, chunks in db.execute(
    "SELECT state, dek_wrapped IS NULL, (SELECT COUNT(*) FROM portal_chunks c WHERE c.message_id = m.id) "
    "FROM portal_messages m WHERE state = 'revoked' ORDER BY created_at"):
    print(state, nokey, chunks)
PYEOF
)"

# --- the lock: five more wrong codes after the resend delay; the sender is told ----------
if [ -n "$link2" ]; then
    # RESEND_AFTER (60 s) since the first code
    wait=$((62 - (SECONDS - lock_t0)))
    [ "$wait" -le 0 ] || sleep "$wait"
    out=$(run_in_lab "$PY" "$FAKES" wrong-codes "$link2" "$P/sms.jsonl" 3 2>&1)
    assert_eq "lock: a new code and five more wrong ones: locked (403)" \
        "send 200 code 200 code 200 code 200 code 200 code 403 locked" "$(printf '%s' "$out" | tr '\n' ' ')"
    wait_for "the portal audited the lock notice" 50 0.2 grep -q '"event_type":"portal_lock_notified"' "$P/portal-audit.log" || true
    assert_eq "lock: audited (portal_locked, portal_lock_notified to the sender)" "1 1 sender@sender.lab.test" \
        "$(portal_events portal_locked) $(portal_events portal_lock_notified) $(grep '"event_type":"portal_lock_notified"' "$P/portal-audit.log" | jq -r '.detail.sender' 2>/dev/null)"
    if pf_assert_mail "lock notice: it reached the sender's mailbox (pfa)" pfa "$r2 stuurde" sender@sender.lab.test; then
        f=$PF_FILE
        assert_match "lock notice: from the portal's address" "<$PORTAL_FROM>" "$(pf_hdr "$f" From)"
        assert_match "lock notice: Dutch and English, names the locked recipient" \
            "Beste afzender.*$r2.*Dear sender" "$(tr '\n' ' ' <"$f")"
        assert_eq "lock notice: content-free (no subject or body text of the message, no link)" "0 0" \
            "$(grep -c "$t2" "$f") $(grep -c "$PUBLIC_URL" "$f")"
        assert_eq "lock notice: the mark never leaves" 0 "$(pf_hdr "$f" X-NTA7516-Portal-Mark | grep -c . || true)"
        assert_eq "lock notice: DKIM-signed by the milter (dkimverify)" "signature ok" "$(pf_dkimverify "$f")"
    fi
fi

# --- the portal's notification, valid mark and all, replayed by SMTP clients --------------
# replay FROM_ADDR FILE RCPT : swaks with the file as DATA as it is (no added headers)
replay() {
    PF_OUT="$LAB/out/swaks-replay-$1-$(date +%s%N).out"
    run_in_lab_resolv timeout 60 swaks --server "$PF_INT:25" --local-interface "$1" \
        --helo client.lab.test --from "$PORTAL_FROM" --to "$3" --data "@$2" --timeout 30 >"$PF_OUT" 2>&1
    PF_QID=$(sed -n 's/^<[~-]* *250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$PF_OUT" | tail -n 1)
}
sub=$(grep -lx "To: <$r>" "$P"/submitted/*.eml 2>/dev/null | head -n 1)
if assert_true "replay: the portal's submission of the first notification was kept" test -s "$sub"; then
    mid=$(pf_hdr "$sub" Message-ID)
    replay "$PF_INT" "$sub" "$r"
    pf_assert_log "replay, trusted client (control): the mark is honoured, ordinary smtp to the domain's MX" pfa \
        "postfix/smtp\[[0-9]+\]: $PF_QID: to=<$r>, relay=mx\.notlsa\.lab\.test\[127\.0\.10\.26\]:25, .*status=sent"
    pf_assert_count "replay, trusted client (control): a second copy at pfc" 2 pfc "$mid" "$r"
    # Postfix lets 127.0.10.98 relay now; the milter still sees a client outside
    # [outbound] networks
    d=$(pf_etc pfa)
    postconf -c "$d" -e "mynetworks = 127.0.10.1/32, 127.0.0.1/32, $PF_EXT/32"
    postfix_ pfa reload >/dev/null 2>&1
    sleep 1
    notes=$(grep -c 'portal mark from an untrusted client ignored' "$LAB/log/nta-daemon.out" || true)
    replay "$PF_EXT" "$sub" "$r"
    if assert_match "replay, untrusted client: Postfix accepted it (it may relay)" '.' "$PF_QID"; then
        pf_wait_log pfa "$PF_QID: to=<$r>, .*status=(sent|bounced|deferred)" || true
        pf_assert_nolog "replay, untrusted client: never by plain smtp to the domain's MX" pfa \
            "postfix/smtp\[[0-9]+\]: $PF_QID: to=<$r>, relay=mx\.notlsa"
        pf_assert_log "replay, untrusted client: the secure route (nta-portal), which refuses the portal's own mail" pfa \
            "postfix/nta-portal/lmtp\[[0-9]+\]: $PF_QID: to=<$r>, .*status=bounced .*550 5\.7\.1 "
        pf_assert_count "replay, untrusted client: no third copy at pfc" 2 pfc "$mid" "$r"
        assert_true "replay, untrusted client: the milter logged the mark as ignored and removed" \
            test "$(grep -c 'portal mark from an untrusted client ignored' "$LAB/log/nta-daemon.out")" -gt "$notes"
    fi
    postconf -c "$d" -e "mynetworks = 127.0.10.1/32, 127.0.0.1/32"
    postfix_ pfa reload >/dev/null 2>&1
fi
# The waiting messages, after the periodic pass (every 60 s; the lock case above waited
# longer than that): the number given -> notification and receipt; the one run out ->
# the sender is told it was not delivered, the message is shredded.
if pf_assert_mail "number by reply: the recipient's notification reached pfc" pfc "$ry" "$ry"; then
    assert_true "number by reply: it names the number from the subject (masked)" grep -q '06-\*\*\*\*4455' "$PF_FILE"
fi
if [ -n "$nlink" ] && pf_assert_mail "waiting: with the number, the recipient's notification reached pfc" pfc "$rw" "$rw"; then
    assert_true "waiting: it names the given number (masked)" grep -q '06-\*\*\*\*3344' "$PF_FILE"
fi
# receipt_for RCPT : the receipts at pfa that name RCPT (the request for a number has no Kenmerk)
receipt_for() { pf_files pfa "$1" sender@sender.lab.test | xargs -r grep -l 'Kenmerk:'; }
if [ -n "$nlink" ]; then
    wait_for "the receipt for the waiting message" 75 0.2 receipt_for "$rw" >/dev/null || true
    assert_eq "waiting: the sender's receipt came once the number was given (one)" 1 "$(receipt_for "$rw" | wc -l)"
fi
if pf_assert_mail "not delivered: the sender was told (pfa)" pfa "$rx is niet afgeleverd" sender@sender.lab.test; then
    assert_eq "not delivered: content-free, DKIM-signed" "0 signature ok" "$(grep -c "$tx" "$PF_FILE") $(pf_dkimverify "$PF_FILE")"
fi
assert_eq "audit: number asked three times (sent), given twice (link: kept in the book; mail), not delivered once" "true true true|true false|1" \
    "$(grep '"event_type":"portal_number_asked"' "$P/portal-audit.log" | jq -r '.detail.sent' | tr '\n' ' ' | sed 's/ $//')|$(grep '"event_type":"portal_number_given"' "$P/portal-audit.log" | jq -r '.detail.saved_to_address_book' | tr '\n' ' ' | sed 's/ $//')|$(portal_events portal_not_delivered)"
assert_match "not delivered: portal list shows that message expired (shredded)" "^[0-9a-f]{32}  expired .*$rx" \
    "$("$NTA_BIN" portal list --config "$P/portal.toml" 2>&1)"

# The administrator's withdrawal: recorded by the portal's periodic pass (every 60 s; the
# lock case above waited longer than that).
wait_for "the portal audited the administrator's withdrawal" 350 0.2 \
    grep -q '"by":"administrator' "$P/portal-audit.log" || true
assert_match "audit: portal_revoked by the administrator, with the Message-ID" "^administrator.* <$mid3>\$" \
    "$(grep '"event_type":"portal_revoked"' "$P/portal-audit.log" | jq -r 'select(.detail.by != "link") | "\(.detail.by) \(.detail.message_id)"' 2>/dev/null)"
assert_exit "audit: the portal's chain verifies" 0 "$NTA_BIN" audit verify "$P/portal-audit.log"

lab_stop portal-browser
lab_stop portal-lmtp-tee
lab_stop portal-sms-fake
nta_policy fallback
[ "$E2E_FAILED" -eq 0 ] || { pf_dump_logs; tail -n 30 "$LAB/log/portal-browser.out"; }
exit 0
