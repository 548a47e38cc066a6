#!/usr/bin/env bash
# 90-audit-verify: the NEN 7513 audit trail that the whole e2e run wrote.
#
# Runs after every other case file (run.sh runs them in name order). Every daemon that
# lib-postfix.sh started wrote [audit] file = $LAB/audit/audit.log, so the run left ONE
# hash chain across all daemon restarts; $LAB/audit/cases names the case files that
# started the mail lab, $LAB/audit/markers holds body/Subject markers they sent.
#
# Cases: (1) the run's log: `audit verify` exit 0 from the genesis, the seq/prev/hash links
# recomputed independently here (python3 hashlib), every daemon start continues the chain
# (one startup per boot id, each linked to the line before it), the <file>.chain record
# names the last line, the event types the run must have produced, every end-of-data
# refusal in Postfix's logs has its deferred/rejected line, no body or Subject text that
# was sent; (2) restart and rotation: a daemon started now continues the chain, a log
# renamed while the daemon runs is continued in a new file, a log renamed while it is
# down is continued through <file>.chain; `audit verify OLD... NEW` exit 0, the newest file
# alone "start not verified", files in the wrong order exit 1; (3) tampered copies: one
# altered byte (middle and last line), one deleted line, two swapped lines, a truncated
# last line, a removed last line (with the .chain record) -> exit 1 naming the line; an
# unreadable file -> exit 2.
# No `set -e`: a failed assertion is recorded and the next case still runs.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init
# shellcheck source-path=SCRIPTDIR source=lib-postfix.sh
. "$E2E_DIR/lib-postfix.sh"

LOG=$PF_AUDIT_FILE
ADIR=$(dirname "$LOG")
WORK="$LAB/out/audit"
mkdir -p "$WORK"

# verify FILE... : `audit verify`, output in $VOUT, exit status in $VRC
verify() {
    VRC=0
    VOUT=$("$NTA_BIN" audit verify "$@" 2>&1) || VRC=$?
}

# chain_check FILE... : independent check of the files as one chain (python3 hashlib):
# each line's hash seals its bytes up to ,"hash":", prev is the SHA-256 of the line before
# (64 zeros at the genesis), seq counts up by one. Prints "ok LINES LAST_SEQ LAST_HASH
# BOOTS LINKED_BOOTS" or "broken FILE:LINE WHY".
chain_check() {
    python3 "$E2E_DIR/py/chain_check.py" "$@"
}

# line_hash FILE N : SHA-256 of line N's bytes (without newline)
line_hash() { sed -n "${2}p" "$1" | tr -d '\n' | sha256sum | cut -d' ' -f1; }

# types FILE... : the event types present, sorted, one per line
types() { cat "$@" | jq -r .event_type | sort -u; }

# ran PREFIX : a case file whose name starts with PREFIX started the mail lab in this run
ran() { grep -q "^$1" "$ADIR/cases" 2>/dev/null; }

# ---------------------------------------------------------------------------------------
# (1) the log the run wrote
if [ ! -s "$LOG" ]; then
    e2e_fail "run log: $LOG does not exist or is empty: run 90 together with the mail case files (2x-4x)"
else
    # oldest first: rotated predecessors (none in a normal run), then the live file
    mapfile -t run_files < <(find "$ADIR" -maxdepth 1 -name "$(basename "$LOG")[-.]*" ! -name '*.chain' | sort)
    run_files+=("$LOG")
    cp "$LOG" "$WORK/run.log"
    cp "$LOG.chain" "$WORK/run.log.chain" 2>/dev/null || true
    n=$(wc -l <"$LOG")
    e2e_log "run log: $n lines in ${#run_files[@]} file(s); case files that started the mail lab: $(tr '\n' ' ' <"$ADIR/cases" 2>/dev/null)"

    verify "${run_files[@]}"
    assert_eq "run log: audit verify exits 0 (${run_files[*]##*/})" 0 "$VRC" "$VOUT"
    assert_match "run log: chain intact, verified from the genesis" \
        "^$n lines in ${#run_files[@]} files: chain intact\$" "$VOUT"
    assert_match "run log: ... from the genesis to the last seq, with the last line's hash" \
        "^verified from the genesis to seq $(jq -r .seq <(tail -n 1 "$LOG")); last hash $(line_hash "$LOG" "$n")\$" "$VOUT"

    read -r st lines last_seq last_hash _ linked distinct < <(chain_check "${run_files[@]}")
    assert_eq "run log: independent check (python3 hashlib): seals, prev links and seq all hold" ok "$st" "$lines $last_seq $last_hash"
    assert_eq "run log: seq runs 1..$n without gaps" "$n" "${last_seq:-}"
    assert_eq "run log: one genesis line (the first)" 1 "$(jq -r 'select(.prev == "'"$(printf '0%.0s' {1..64})"'") | .seq' "$LOG" | grep -c .)"
    startups=$(jq -r 'select(.event_type == "startup") | .seq' "$LOG" | grep -c .)
    cases_n=$(grep -c . "$ADIR/cases" 2>/dev/null || echo 0)
    assert_true "run log: at least one daemon start per mail case file ($startups startups, $cases_n case files)" \
        test "$startups" -ge "$cases_n"
    assert_eq "run log: one boot id per daemon start (each process start is one startup line)" "$startups" "${distinct:-}"
    assert_eq "run log: the chain crossed every restart (linked boots = starts - 1)" "$((startups - 1))" "${linked:-}"
    # the first line of every process is its config_loaded, right before its startup line
    assert_eq "run log: every process begins with config_loaded then startup" "$startups" \
        "$(jq -r '.event_type' "$LOG" | awk 'p == "config_loaded" && $0 == "startup" { c++ } { p = $0 } END { print c + 0 }')"
    assert_match "run log: $LOG.chain records the last line (seq and hash)" \
        "seq=0*$last_seq hash=$last_hash" "$(cat "$LOG.chain" 2>&1)"
    assert_eq "run log: every line is a NEN 7513-shaped record (keys in the documented order)" "$n" \
        "$(jq -c 'keys_unsorted' "$LOG" | grep -cxF '["seq","prev","event_id","time","event_type","action","outcome","user","network_access_point","audit_source","objects","detail","hash"]')" \
        "$(jq -c 'keys_unsorted' "$LOG" | sort | uniq -c | head -n 3)"

    # the event types this run must have produced
    have=$(types "${run_files[@]}")
    want=(config_loaded startup shutdown message_received classified recipient_routed footer_added signed)
    if ran 20 || ran 30 || ran 35 || ran 40; then want+=(config_reloaded); fi
    if ran 30; then want+=(deferred headers_removed inbound_verified); fi
    if ran 35; then want+=(inbound_verified rejected headers_removed); fi
    for ty in $(printf '%s\n' "${want[@]}" | sort -u); do
        assert_eq "run log: has $ty events" 1 "$(printf '%s\n' "$have" | grep -cxF "$ty")"
    done
    assert_eq "run log: no audit_log_recovered (no torn or lost lines during the run)" 0 "$(printf '%s\n' "$have" | grep -cxF audit_log_recovered)"
    assert_eq "run log: no config_refused (every reload of the run was valid)" 0 "$(printf '%s\n' "$have" | grep -cxF config_refused)"
    assert_eq "run log: as many shutdown as startup lines (every daemon was stopped cleanly)" "$startups" \
        "$(jq -r 'select(.event_type == "shutdown") | .seq' "$LOG" | grep -c .)"
    # outcome codes as documented: deferred 4, rejected 8
    assert_eq "run log: deferred lines have outcome 4" "" "$(jq -r 'select(.event_type == "deferred" and .outcome != 4) | .seq' "$LOG")"
    assert_eq "run log: rejected lines have outcome 8" "" "$(jq -r 'select(.event_type == "rejected" and .outcome != 8) | .seq' "$LOG")"

    # every end-of-data refusal Postfix logged (all of pfa's logs of the run) has its line
    refused=$(cat "$LAB"/log/pfa.maillog* 2>/dev/null |
        sed -n 's/.*: \([0-9A-F]\{6,\}\): milter-reject: END-OF-MESSAGE from .*: \([45]\)\.[0-9]*\.[0-9]* .*/\1 \2/p' | sort -u)
    if [ -n "$refused" ]; then
        unlogged=""
        while read -r qid class; do
            ty=deferred
            [ "$class" = 5 ] && ty=rejected
            c=$(jq -r --arg q "$qid" --arg t "$ty" 'select(.event_type == $t and .detail.queue_id == $q and .detail.stage == "end_of_message") | .seq' "$LOG" | grep -c .)
            [ "$c" -ge 1 ] || unlogged+="$qid($ty) "
        done <<<"$refused"
        assert_eq "run log: each of the $(printf '%s\n' "$refused" | grep -c .) end-of-data refusals in pfa's logs has its deferred/rejected line" "" "$unlogged"
    fi

    # no message content: the bodies and Subjects the case files sent
    markers=("e2e message tok" "local submission tok" "Uitslag van pati" "NTA7516-E2E-FOOTER")
    if [ -s "$ADIR/markers" ]; then mapfile -t -O "${#markers[@]}" markers <"$ADIR/markers"; fi
    while IFS= read -r m; do
        sent=$(grep -rlF -- "$m" "$LAB"/pf/*/mail "$LAB/out" 2>/dev/null | grep -v "^$WORK/" | head -n 1)
        if [ -z "$sent" ]; then
            e2e_log "marker '$m' was not found in any delivered copy or transcript of this run: not checked"
            continue
        fi
        assert_eq "run log: no '$m' (sent in message content, e.g. $(basename "$sent"))" 0 \
            "$(grep -cF -- "$m" "${run_files[@]}" | awk -F: '{ s += $NF } END { print s + 0 }')"
    done < <(printf '%s\n' "${markers[@]}" | sort -u)
fi

# ---------------------------------------------------------------------------------------
# (2) restart and rotation: the chain goes on across processes and files
before_lines=0
before_hash=""
if [ -s "$LOG" ]; then
    before_lines=$(wc -l <"$LOG")
    before_hash=$(line_hash "$LOG" "$before_lines")
    before_seq=$(tail -n 1 "$LOG" | jq -r .seq)
fi
pf_lab_up fallback
if [ "$before_lines" -gt 0 ]; then
    wait_for "the new process's first lines" 25 0.2 sh -c "[ \$(wc -l <'$LOG') -ge $((before_lines + 2)) ]" || true
    first_new=$(sed -n "$((before_lines + 1))p" "$LOG")
    assert_eq "restart: the new process's first line is config_loaded" config_loaded "$(jq -r .event_type <<<"$first_new")"
    assert_eq "restart: ... its seq continues the chain" "$((before_seq + 1))" "$(jq -r .seq <<<"$first_new")"
    assert_eq "restart: ... its prev is the hash of the previous process's last line" "$before_hash" "$(jq -r .prev <<<"$first_new")"
fi
t=$(pf_token)
pf_accepted "restart: a message through the restarted daemon accepted" int "$t" --to "$t@nta.lab.test"
pf_assert_mail "restart: delivered" pfb "$t" "$t@nta.lab.test" || true
wait_for "the message's audit lines are written" 25 0.2 grep -qF "\"$PF_QID\"" "$LOG" || true

# rotation while the daemon runs (logrotate without copytruncate: rename, no create)
mv "$LOG" "$LOG-1"
old_last=$(line_hash "$LOG-1" "$(wc -l <"$LOG-1")")
t=$(pf_token)
pf_accepted "rotation (running): a message after the rename accepted" int "$t" --to "$t@nta.lab.test"
q=$PF_QID
pf_assert_mail "rotation (running): delivered" pfb "$t" "$t@nta.lab.test" || true
if wait_for "the daemon writes a new $LOG" 25 0.2 test -s "$LOG"; then
    e2e_pass "rotation (running): the daemon created a new $(basename "$LOG") after the rename"
    assert_eq "rotation (running): its first line links to the last line of the renamed file" "$old_last" "$(head -n 1 "$LOG" | jq -r .prev)"
    wait_for "the message's audit lines are written" 25 0.2 grep -qF "\"$q\"" "$LOG" || true
    assert_eq "rotation (running): the new file has this message's message_received line" 1 \
        "$(jq -r --arg q "$q" 'select(.event_type == "message_received" and .detail.queue_id == $q) | .seq' "$LOG" | grep -c .)"
else
    e2e_fail "rotation (running): no new $LOG after the rename"
fi

# rotation while the daemon is down: the new empty log links through <file>.chain
nta_daemon_stop
mv "$LOG" "$LOG-2"
old_last=$(line_hash "$LOG-2" "$(wc -l <"$LOG-2")")
nta_daemon_start
wait_for "the daemon writes its startup lines" 25 0.2 test -s "$LOG" || true
assert_eq "rotation (down): the new file's first line links to the last line of the renamed one (via .chain)" \
    "$old_last" "$(head -n 1 "$LOG" 2>/dev/null | jq -r .prev)"
t=$(pf_token)
pf_accepted "rotation (down): a message after the restart accepted" int "$t" --to "$t@nta.lab.test"
pf_assert_mail "rotation (down): delivered" pfb "$t" "$t@nta.lab.test" || true
wait_for "the message's audit lines are written" 25 0.2 grep -qF "\"$PF_QID\"" "$LOG" || true
pf_lab_down
trap - EXIT

all=("$LOG-1" "$LOG-2" "$LOG")
verify "${all[@]}"
assert_eq "rotated files, oldest first: audit verify exits 0" 0 "$VRC" "$VOUT"
total=$(cat "${all[@]}" | wc -l)
if [ "$before_lines" -gt 0 ]; then
    assert_match "rotated files: $total lines in 3 files, chain intact" "^$total lines in 3 files: chain intact\$" "$VOUT"
    assert_match "rotated files: verified from the genesis to seq $total" "^verified from the genesis to seq $total; last hash $(line_hash "$LOG" "$(wc -l <"$LOG")")\$" "$VOUT"
fi
read -r st _ < <(chain_check "${all[@]}")
assert_eq "rotated files: independent check agrees" ok "$st"
verify "$LOG"
assert_eq "newest file alone: exit 0" 0 "$VRC" "$VOUT"
assert_match "newest file alone: its start is reported as not verified" '\(start not verified\)' "$VOUT"
verify "$LOG" "$LOG-2" "$LOG-1"
assert_eq "rotated files in the wrong order: exit 1" 1 "$VRC" "$VOUT"

# ---------------------------------------------------------------------------------------
# (3) tampered copies of the whole chain (one file: the chain does not care where files end)
whole="$WORK/whole.log"
cat "${all[@]}" >"$whole"
n=$(wc -l <"$whole")
verify "$whole"
assert_eq "whole chain in one file: exit 0 (the untampered control)" 0 "$VRC" "$VOUT"
k=$((n / 2))
[ "$k" -ge 2 ] || k=2

# tamper KIND OUT [LINE] : a copy of $whole with one change
tamper() {
    python3 "$E2E_DIR/py/tamper.py" "$whole" "$@"
}

t_byte="$WORK/altered-byte.log"
tamper byte "$t_byte" "$k"
assert_eq "altered byte: the copy differs from the original in exactly one byte" 1 "$(cmp -l "$whole" "$t_byte" | wc -l)"
verify "$t_byte"
assert_eq "altered byte (line $k): exit 1" 1 "$VRC" "$VOUT"
assert_match "altered byte (line $k): names the line" "^$t_byte:$k: chain broken: line altered" "$VOUT"

t_last="$WORK/altered-last.log"
tamper byte "$t_last" "$n"
verify "$t_last"
assert_eq "altered byte in the LAST line (no later line covers it): exit 1" 1 "$VRC" "$VOUT"
assert_match "altered byte in the last line: names line $n" "^$t_last:$n: chain broken: line altered" "$VOUT"

t_del="$WORK/deleted-line.log"
tamper delete "$t_del" "$k"
verify "$t_del"
assert_eq "deleted line $k: exit 1" 1 "$VRC" "$VOUT"
assert_match "deleted line $k: names line $k (its successor no longer links)" "^$t_del:$k: chain broken: prev does not match line $((k - 1))" "$VOUT"

t_swap="$WORK/swapped-lines.log"
tamper swap "$t_swap" "$k"
verify "$t_swap"
assert_eq "swapped lines $k and $((k + 1)): exit 1" 1 "$VRC" "$VOUT"
assert_match "swapped lines: names line $k" "^$t_swap:$k: chain broken: prev does not match line $((k - 1))" "$VOUT"

t_trunc="$WORK/truncated.log"
tamper truncate "$t_trunc"
verify "$t_trunc"
assert_eq "truncated last line (no newline): exit 1" 1 "$VRC" "$VOUT"
assert_match "truncated last line: names line $n" "^$t_trunc:$n: chain broken: truncated" "$VOUT"

# the last line removed: only the <file>.chain record can tell
t_drop="$WORK/live-copy.log"
tamper droplast "$t_drop"
verify "$t_drop"
assert_eq "last line removed, no .chain record: exit 0 (nothing can tell; the live file has one)" 0 "$VRC" "$VOUT"
cp "$LOG.chain" "$t_drop.chain"
verify "$t_drop"
assert_eq "last line removed, with the live .chain record: exit 1" 1 "$VRC" "$VOUT"
assert_match "last line removed: names the missing line $n and the state record" \
    "^$t_drop:$n: chain broken: .*live-copy\.log\.chain records seq [0-9]+ but the chain ends at seq" "$VOUT"

verify "$WORK/no-such-file.log"
assert_eq "unreadable file: exit 2" 2 "$VRC" "$VOUT"

[ "$E2E_FAILED" -eq 0 ] || pf_dump_logs
exit 0
