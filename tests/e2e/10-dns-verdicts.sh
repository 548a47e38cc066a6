#!/usr/bin/env bash
# 10-dns-verdicts: `nta7516-milter check` against a real DNSSEC stack.
#
# Knot serves the lab's own signed root, which delegates lab.test with a DS; Knot signs
# lab.test and the child bogus.lab.test (whose DS in lab.test is wrong); the child
# insecure.lab.test is unsigned and delegated without DS. Unbound validates from the lab
# root's KSK; the binary asks Unbound and validates itself from the same KSK
# ($LAB/root.dnskey), so the chain of trust has the same shape as on the Internet.
# Fixtures: tests/e2e/zones/*.zone.in.
#
# Part 1 checks the lab itself with dig (AD flags, SERVFAIL for bogus, TLSA = the lab's
# certificate): if the lab is broken, part 2 is not run and one failure says so, so that a
# broken lab is never reported as a product failure.
# Part 2 checks the verdicts, reason codes, targets and exit codes of the product against
# the contract (exit 0 compliant / 1 not compliant / 2 temporary or usage; highest wins).
# Part 3 points the binary straight at Knot (authoritative for every lab zone, validates
# nothing): the binary must validate itself, so bogus data is its own dnssec_bogus.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_case_init

# ---------------------------------------------------------------------------------------
# Part 1: the lab
lab_failures_before=$E2E_FAILED

# lab_expect DESC WANT_STATUS WANT_AD(ad|noad|any) DIG_ARGS... ; sets LAST_DIG
lab_expect() {
    local desc=$1 want_status=$2 want_ad=$3 status flags ok=1
    shift 3
    LAST_DIG=$(lab_dig "$@" 2>&1) || true
    status=$(dig_status "$LAST_DIG")
    flags=$(dig_flags "$LAST_DIG")
    [ "$status" = "$want_status" ] || ok=0
    case "$want_ad" in
    ad) [[ " $flags " == *" ad "* ]] || ok=0 ;;
    noad) [[ " $flags " != *" ad "* ]] || ok=0 ;;
    esac
    if [ "$ok" -eq 1 ]; then
        e2e_pass "lab: $desc"
    else
        e2e_fail "lab: $desc: expected status $want_status ($want_ad), got status '${status:-none}' flags '$flags'" \
            "$(printf '%s\n' "$LAST_DIG" | grep -v '^;' | grep -v '^$' | head -n 10)"
    fi
}

answer_of() { printf '%s\n' "$LAST_DIG" | grep -v '^;' | awk -v t="$1" '$4 == t'; }

lab_expect "lab.test DS in the lab root is secure (ad)" NOERROR ad lab.test DS
lab_expect "nta.lab.test MX is secure (ad)" NOERROR ad nta.lab.test MX
lab_expect "nta.lab.test TXT is secure (ad)" NOERROR ad nta.lab.test TXT
assert_match "lab: nta.lab.test TXT is an NTA7516-1 record" '"v=NTA7516-1;startdate=[0-9]{4}-[0-9]{2};enddate=' "$(answer_of TXT)"
lab_expect "TLSA of mx.nta.lab.test is secure (ad)" NOERROR ad _25._tcp.mx.nta.lab.test TLSA
tlsa_want="3 1 1 $(tr 'a-f' 'A-F' <"$LAB/tls/mx.tlsa")"
tlsa_got=$(answer_of TLSA | awk '{ d = ""; for (i = 8; i <= NF; i++) d = d $i; print $5, $6, $7, toupper(d) }')
assert_eq "lab: TLSA of mx.nta.lab.test is 3 1 1 SHA-256(SPKI of \$LAB/tls/mx.crt)" "$tlsa_want" "$tlsa_got"
lab_expect "TLSA of relay.ntamx.lab.test is secure (ad)" NOERROR ad _25._tcp.relay.ntamx.lab.test TLSA
lab_expect "no TLSA at mx.notlsa.lab.test: NXDOMAIN, securely denied (ad)" NXDOMAIN ad _25._tcp.mx.notlsa.lab.test TLSA
assert_eq "lab: no TLSA at mx.notlsa.lab.test" "" "$(answer_of TLSA)"
lab_expect "insecure.lab.test TXT is answered without ad (provably insecure)" NOERROR noad insecure.lab.test TXT
assert_match "lab: insecure.lab.test serves an NTA record" 'v=NTA7516-1' "$(answer_of TXT)"
lab_expect "bogus.lab.test TXT is SERVFAIL (validation fails)" SERVFAIL any bogus.lab.test TXT
lab_expect "bogus.lab.test TXT with +cd is served (only the DS is wrong)" NOERROR noad +cd bogus.lab.test TXT
assert_match "lab: bogus.lab.test serves an NTA record" 'v=NTA7516-1' "$(answer_of TXT)"
lab_expect "nosuch.lab.test is NXDOMAIN with ad (secure denial)" NXDOMAIN ad nosuch.lab.test A
lab_expect "plain.lab.test TXT is secure (ad)" NOERROR ad plain.lab.test TXT
assert_eq "lab: plain.lab.test has no NTA record" "" "$(answer_of TXT | grep -i 'v=NTA7516' || true)"
assert_true "lab: Knot serves a DS for dead.lab.test (secure delegation to a dead server)" \
    sh -c "ip netns exec '$NETNS' dig +time=2 +tries=1 +norec @$E2E_KNOT_ADDR dead.lab.test DS +short | grep -q ."

# the product's trust anchor: one line, hickory's format, the KSK Unbound validates with
assert_match "lab: \$LAB/root.dnskey is '. IN DNSKEY 257 3 13 <base64>'" \
    '^\. IN DNSKEY 257 3 13 [A-Za-z0-9+/]+=*$' "$(cat "$LAB/root.dnskey")"
assert_eq "lab: \$LAB/root.dnskey has exactly one line" 1 "$(wc -l <"$LAB/root.dnskey")"
lab_expect "the lab root's DNSKEY is secure (ad)" NOERROR ad . DNSKEY
ksk_served=$(answer_of DNSKEY | awk '$5 == 257 { b = ""; for (i = 8; i <= NF; i++) b = b $i; print b }')
assert_eq "lab: the trust anchor is the lab root's served KSK" "$ksk_served" "$(awk '{ print $NF }' "$LAB/root.dnskey")"

if [ "$E2E_FAILED" -ne "$lab_failures_before" ]; then
    e2e_fail "the lab is broken (see the 'lab:' failures above): product assertions NOT run"
    exit 0
fi

# ---------------------------------------------------------------------------------------
# Part 2: the product

if [ ! -x "$NTA_BIN" ]; then
    e2e_fail "binary $NTA_BIN does not exist or is not executable: product assertions NOT run"
    exit 0
fi

# The contract's closed set of reason codes.
KNOWN_CODES=(nta_record_insecure nta_record_absent nta_record_malformed nta_records_conflicting
    nta_record_expired nta_record_not_yet_valid mx_insecure null_mx no_targets no_usable_tlsa
    dmarc_policy_weak spf_policy_weak dns_timeout dns_servfail dnssec_bogus dns_error)
KNOWN_CODES_JSON=$(printf '%s\n' "${KNOWN_CODES[@]}" | jq -R . | jq -sc .)

# nta_check NAME ARGS... : run `check ARGS...` in the lab; stdout in $LAB/out/NAME.out,
# stderr in $LAB/out/NAME.err, exit status in CHECK_RC, wall time in CHECK_SECS
# (check_details prints all of it for a failure message)
nta_check() {
    local name=$1 t
    shift
    t=$SECONDS
    CHECK_ARGS="$*"
    CHECK_RC=0
    run_in_lab timeout -k 5 60 "$NTA_BIN" check "$@" \
        >"$LAB/out/$name.out" 2>"$LAB/out/$name.err" </dev/null || CHECK_RC=$?
    CHECK_SECS=$((SECONDS - t))
    CHECK_OUT="$LAB/out/$name.out"
    CHECK_ERR="$LAB/out/$name.err"
}

check_details() {
    printf 'command: nta7516-milter check %s (exit %s, %ss)\n' "$CHECK_ARGS" "$CHECK_RC" "$CHECK_SECS"
    printf 'stdout: %s\n' "$(head -c 1500 "$CHECK_OUT")"
    printf 'stderr: %s\n' "$(tail -n 10 "$CHECK_ERR")"
}

# json_ok DESC : stdout is exactly one JSON document with version 1 and a results array
json_ok() {
    if [ "$(jq -s 'length' "$CHECK_OUT" 2>/dev/null)" != 1 ]; then
        e2e_fail "$1: stdout is one JSON document" "$(check_details)"
        return 1
    fi
    if ! jq -e '.version == 1 and (.results | type) == "array"' "$CHECK_OUT" >/dev/null; then
        e2e_fail "$1: JSON has \"version\": 1 and a \"results\" array" "$(check_details)"
        return 1
    fi
    e2e_pass "$1: one JSON document, version 1"
}

# result_of DOMAIN : the result object for DOMAIN (compared lower case, without trailing dot)
result_of() {
    jq -c --arg d "$1" '[.results[] | select((.domain // "" | ascii_downcase | rtrimstr(".")) == $d)]' "$CHECK_OUT"
}

# expect_result DOMAIN VERDICT [host=H] [code=A|B...] : checks one result in $CHECK_OUT
expect_result() {
    local d=$1 verdict=$2 r n got spec codes
    shift 2
    r=$(result_of "$d")
    n=$(jq 'length' <<<"$r")
    if [ "$n" != 1 ]; then
        e2e_fail "$d: exactly one result for the domain (got $n)" "$(check_details)"
        return
    fi
    r=$(jq -c '.[0]' <<<"$r")
    got=$(jq -r '.verdict // "null"' <<<"$r")
    assert_eq "$d: verdict $verdict" "$verdict" "$got" "result: $r"
    codes=$(jq -r '[.reasons // [] | .[] | .code // "null"] | join(" ")' <<<"$r")
    if jq -e --argjson known "$KNOWN_CODES_JSON" \
        '(.reasons | type) == "array" and all(.reasons[]; (.code | IN($known[])) and (.message | type) == "string" and (.message | length) > 0)' \
        <<<"$r" >/dev/null 2>&1; then
        e2e_pass "$d: reasons are {code, message} with known codes (${codes:-none})"
    else
        e2e_fail "$d: reasons are a list of {code, message} with codes from the contract" "result: $r"
    fi
    if [ "$verdict" != compliant ] && [ -z "$codes" ]; then
        e2e_fail "$d: a $verdict verdict gives at least one reason" "result: $r"
    fi
    for spec in "$@"; do
        case "$spec" in
        host=*)
            got=$(jq -r '.targets[0].host // "none" | ascii_downcase | rtrimstr(".")' <<<"$r" 2>/dev/null || echo none)
            assert_eq "$d: first target host is ${spec#host=}" "${spec#host=}" "$got" "result: $r"
            ;;
        code=*)
            local want=${spec#code=} c found=""
            for c in $codes; do
                case "|$want|" in *"|$c|"*) found=$c ;; esac
            done
            if [ -n "$found" ]; then
                e2e_pass "$d: reason code $found"
            else
                e2e_fail "$d: reason code ${want//|/ or }: got '${codes:-none}'" "result: $r"
            fi
            ;;
        *) e2e_die "expect_result: bad spec $spec" ;;
        esac
    done
}

# expect_domain DOMAIN EXIT VERDICT [SPEC...] : one `check --json DOMAIN` run
# (with the config $CHECK_CONFIG, default $NTA_CONFIG)
expect_domain() {
    local d=$1 want_exit=$2
    shift 2
    nta_check "$d" --json --config "${CHECK_CONFIG:-$NTA_CONFIG}" "$d"
    assert_eq "$d: exit code $want_exit" "$want_exit" "$CHECK_RC" "$(check_details)"
    json_ok "$d" || return 0
    expect_result "$d" "$@"
}

# --- one domain per run -------------------------------------------------------------------
expect_domain nta.lab.test 0 compliant host=mx.nta.lab.test
expect_domain ntamx.lab.test 0 compliant host=relay.ntamx.lab.test
expect_domain legacy.lab.test 0 compliant host=mx.nta.lab.test
expect_domain split.lab.test 0 compliant host=mx.nta.lab.test
expect_domain expired.lab.test 1 not_compliant code=nta_record_expired
expect_domain notyet.lab.test 1 not_compliant code=nta_record_not_yet_valid
expect_domain notlsa.lab.test 1 not_compliant code=no_usable_tlsa
expect_domain nullmx.lab.test 1 not_compliant code=null_mx
expect_domain malformed.lab.test 1 not_compliant code=nta_record_malformed
expect_domain conflict.lab.test 1 not_compliant code=nta_records_conflicting
expect_domain plain.lab.test 1 not_compliant code=nta_record_absent
expect_domain nosuch.lab.test 1 not_compliant code=nta_record_absent
expect_domain insecure.lab.test 1 not_compliant code=nta_record_insecure
# Unbound SERVFAILs bogus data before the binary sees it: either code is right
expect_domain bogus.lab.test 2 temporary "code=dnssec_bogus|dns_servfail"
# nameserver unreachable: Unbound answers late or SERVFAIL; never a verdict
expect_domain dead.lab.test 2 temporary "code=dns_timeout|dns_servfail|dns_error"

# --- several domains in one run: the highest exit code wins -------------------------------
nta_check multi-0 --json --config "$NTA_CONFIG" nta.lab.test legacy.lab.test
assert_eq "nta + legacy: exit 0 (all compliant)" 0 "$CHECK_RC" "$(check_details)"
if json_ok "nta + legacy"; then
    assert_eq "nta + legacy: two results" 2 "$(jq '.results | length' "$CHECK_OUT")"
fi

nta_check multi-1 --json --config "$NTA_CONFIG" nta.lab.test notlsa.lab.test
assert_eq "nta + notlsa: exit 1 (some not compliant)" 1 "$CHECK_RC" "$(check_details)"

nta_check multi-2 --json --config "$NTA_CONFIG" notlsa.lab.test bogus.lab.test nta.lab.test
assert_eq "notlsa + bogus + nta: exit 2 (temporary wins)" 2 "$CHECK_RC" \
    "$(check_details)"
if json_ok "notlsa + bogus + nta"; then
    assert_eq "notlsa + bogus + nta: three results" 3 "$(jq '.results | length' "$CHECK_OUT")"
    expect_result notlsa.lab.test not_compliant code=no_usable_tlsa
    expect_result bogus.lab.test temporary "code=dnssec_bogus|dns_servfail"
    expect_result nta.lab.test compliant host=mx.nta.lab.test
fi

# --- input forms and plain output ---------------------------------------------------------
nta_check upper --json --config "$NTA_CONFIG" NTA.Lab.Test.
assert_eq "NTA.Lab.Test. (upper case, trailing dot): exit 0" 0 "$CHECK_RC" "$(check_details)"
if json_ok "NTA.Lab.Test."; then
    expect_result nta.lab.test compliant
fi

nta_check plain-ok --config "$NTA_CONFIG" nta.lab.test
assert_eq "without --json, nta.lab.test: exit 0" 0 "$CHECK_RC" "$(check_details)"
assert_true "without --json: prints something" test -s "$CHECK_OUT"
nta_check plain-expired --config "$NTA_CONFIG" expired.lab.test
assert_eq "without --json, expired.lab.test: exit 1" 1 "$CHECK_RC" "$(check_details)"

nta_check usage-none --json --config "$NTA_CONFIG"
assert_eq "no domain given: usage error, exit 2" 2 "$CHECK_RC" "$(check_details)"
nta_check usage-bad --json --config "$NTA_CONFIG" 'bad..name'
assert_eq "invalid domain 'bad..name': usage error, exit 2" 2 "$CHECK_RC" "$(check_details)"

# ---------------------------------------------------------------------------------------
# Part 3: no validating resolver in between. Knot answers for every lab zone and passes
# bogus data through; the binary's own validation must catch it.
E2E_CASE="$E2E_CASE/direct-to-knot"
CHECK_CONFIG="$LAB/nta-check-knot.toml"
nta_write_config "$CHECK_CONFIG" "$E2E_KNOT_ADDR"
expect_domain nta.lab.test 0 compliant host=mx.nta.lab.test
expect_domain insecure.lab.test 1 not_compliant code=nta_record_insecure
expect_domain notlsa.lab.test 1 not_compliant code=no_usable_tlsa
expect_domain bogus.lab.test 2 temporary code=dnssec_bogus
unset CHECK_CONFIG
