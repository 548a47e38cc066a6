#!/usr/bin/env bash
# 42-postfix-delay-notice: a sender hears about mail the daemon holds (NTA 7516 6.1.4).
#
# The shipped postfix/main.cf sets delay_warning_time = 4h and the Dutch/English templates
# of postfix/nta7516-milter_bounce.cf. Here pfa's timers are shortened (warning after 2 s,
# queue lifetime 12 s, retries every second) and a local submission to bogus.lab.test
# (DNSSEC bogus: the route map answers TEMP, the queue manager defers) must bring the
# sender first the delay notice, then the bounce, both with the NTA 7516 texts; nothing
# reaches any receiver.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

pf_lab_up defer
pfa_etc=$(pf_etc pfa)

assert_eq "shipped main.cf: delay_warning_time = 4h" 4h "$(postconf -c "$pfa_etc" -h delay_warning_time)"
assert_match "shipped main.cf: bounce_template_file is the shipped template" \
    "/nta7516-milter_bounce\.cf$" "$(postconf -c "$pfa_etc" -h bounce_template_file)"
assert_match "postconf -b: the delay text is Dutch and English" \
    "Uw bericht is na 4 uur nog niet afgeleverd.*" "$(run_in_lab postconf -c "$pfa_etc" -b 2>&1 | tr '\n' ' ')"

# Short timers, as in a lab; the texts stay the shipped ones.
for p in delay_warning_time=2s maximal_queue_lifetime=12s bounce_queue_lifetime=12s \
    queue_run_delay=1s minimal_backoff_time=1s maximal_backoff_time=2s; do
    run_in_lab postconf -c "$pfa_etc" -e "$p"
done
postfix_ pfa reload >/dev/null 2>&1 || e2e_die "postfix pfa does not reload"

t=$(pf_token)
r="$t@bogus.lab.test"
assert_true "held mail: submitted with sendmail" pf_sendmail "$t" "$r"
pf_assert_log "held mail: deferred (address resolver failure)" pfa \
    "to=<$r>, relay=none, .*status=deferred \(address resolver failure\)" 100

# The notices go to sender@sender.lab.test, an own domain: pfa's maildir.
sender=sender@sender.lab.test
is_notice() { pf_files pfa "$t" "$sender" | xargs -r grep -l "^Subject: $1" | head -n 1 | grep .; }
if wait_for "delay notice for $t" 100 0.2 is_notice "Vertraagd / Delayed Mail"; then
    f=$(is_notice "Vertraagd / Delayed Mail")
    e2e_pass "delay notice: the sender received it"
    assert_match "delay notice: Dutch text" "Dit is alleen een waarschuwing" "$(cat "$f")"
    assert_match "delay notice: English text, never sent insecurely" "never sent insecurely" "$(cat "$f")"
    assert_match "delay notice: the recipient's status is delayed" "Action: delayed" "$(cat "$f")"
    assert_match "delay notice: names the recipient" "Final-Recipient: rfc822; $r" "$(cat "$f")"
else
    e2e_fail "delay notice: none in pfa's maildir for $sender" "$(pf_logline pfa "$t|delay|warning" | tail -n 10)"
fi

if wait_for "bounce for $t" 150 0.2 is_notice "Niet afgeleverd / Undelivered Mail"; then
    f=$(is_notice "Niet afgeleverd / Undelivered Mail")
    e2e_pass "bounce: the sender received it after the queue lifetime"
    assert_match "bounce: Dutch text" "Het bericht is\s*NIET onbeveiligd verzonden" "$(tr '\n' ' ' <"$f")"
    assert_match "bounce: English text" "It was NOT sent\s*insecurely" "$(tr '\n' ' ' <"$f")"
    assert_match "bounce: the recipient is reported failed" \
        "Action: failed" "$(cat "$f")"
else
    e2e_fail "bounce: none in pfa's maildir for $sender" "$(pf_logline pfa "$t|bounce|expired" | tail -n 10)"
fi
pf_assert_log "bounce: the queue manager expired the message" pfa "from=<sender@sender.lab.test>, status=expired, returned to sender" 50
for n in pfb pfc pfd; do
    pf_assert_count "held mail: nothing delivered to $n" 0 "$n" "$t" "$r"
done
