#!/usr/bin/env bash
# tests/e2e/run.sh: end-to-end tests of nta7516-milter in a private lab (Debian 12, root).
#
# Installs what the lab needs (apt-get), builds a network namespace with only loopback,
# starts Knot (signing lab.test) and Unbound (validating), runs every case file
# tests/e2e/[0-9][0-9]-*.sh, tears everything down (also on failure or Ctrl-C) and ends
# with the line "e2e: N passed, N failed" (exit 1 if any assertion failed).
#
# Usage: tests/e2e/run.sh [PREFIX...]   run only case files whose name starts with a PREFIX (e.g. 10)
# Environment:
#   NTA_BIN=PATH            binary under test (default: target/debug/nta7516-milter, built with
#                           `cargo build --locked` first when cargo is available)
#   NTA_E2E_KEEP=1          keep the lab directory (configs, zones, logs, outputs) after the run
#   NTA_E2E_APT=always      run apt-get even when all packages are installed
#   NTA_E2E_CASE_TIMEOUT=S  time limit per case file (default 600)
#   NTA_E2E_LOCK_WAIT=S     how long to wait for another lab on this machine (default 3600)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

E2E_PHASE=start
E2E_T0=$SECONDS
E2E_CHILD=""

e2e_finish() {
    local rc=$? counts p f
    set +e
    trap - EXIT INT TERM
    if [ -n "$E2E_CHILD" ] && kill -0 "$E2E_CHILD" 2>/dev/null; then
        # a case file still runs (we were interrupted): timeout passes TERM on to it
        kill -TERM "$E2E_CHILD" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$E2E_CHILD" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$E2E_CHILD" 2>/dev/null
    fi
    counts=$(e2e_counts "${E2E_RESULTS:-/nonexistent}")
    p=${counts% *}
    f=${counts#* }
    if [ "$E2E_PHASE" != finished ]; then
        f=$((f + 1))
        printf '  FAIL  harness stopped during phase "%s" (exit status %s)\n' "$E2E_PHASE" "$rc"
    fi
    if [ "$f" -gt 0 ]; then
        e2e_section "daemon logs"
        lab_dump_logs
        if [ -s "${E2E_RESULTS:-/nonexistent}" ]; then
            e2e_section "failures"
            grep '^FAIL ' "$E2E_RESULTS" | sed 's/^FAIL /  /'
        fi
    fi
    e2e_section "teardown"
    lab_down
    e2e_log "total time: $((SECONDS - E2E_T0))s"
    printf 'e2e: %s passed, %s failed\n' "$p" "$f"
    [ "$f" -eq 0 ] && exit 0
    exit 1
}

[ "$(id -u)" -eq 0 ] || e2e_die "tests/e2e/run.sh must run as root (network namespaces, apt-get, port 53); nothing was tested"
[ "$(uname -s)" = Linux ] || e2e_die "the e2e lab needs Linux network namespaces"

# One lab per machine: two runs would share the namespace names, the loopback addresses and
# port 53. A second run (another checkout, a developer beside CI) waits for the first.
exec 9>/run/lock/nta7516-e2e.lock
if ! flock -n 9; then
    printf '[e2e] another lab runs on this machine; waiting (at most %ss)\n' "${NTA_E2E_LOCK_WAIT:-3600}"
    flock -w "${NTA_E2E_LOCK_WAIT:-3600}" 9 ||
        e2e_die "another e2e lab still runs on this machine after ${NTA_E2E_LOCK_WAIT:-3600}s; nothing was tested"
fi

trap e2e_finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- packages -----------------------------------------------------------------------------
E2E_PHASE=install
e2e_section "install"
lab_install

# --- the binary under test ----------------------------------------------------------------
E2E_PHASE=build
e2e_section "binary"
build_error=""
if [ -n "${NTA_BIN:-}" ]; then
    e2e_log "NTA_BIN=$NTA_BIN (given)"
elif command -v cargo >/dev/null 2>&1; then
    NTA_BIN="${CARGO_TARGET_DIR:-$E2E_REPO/target}/debug/nta7516-milter"
    if ! (cd "$E2E_REPO" && cargo build --locked --bin nta7516-milter); then
        build_error="cargo build --locked --bin nta7516-milter failed"
    fi
else
    NTA_BIN="${CARGO_TARGET_DIR:-$E2E_REPO/target}/debug/nta7516-milter"
    e2e_warn "cargo not found: using $NTA_BIN as it is"
fi
NTA_BIN=$(cd "$E2E_REPO" && realpath -m "$NTA_BIN")
export NTA_BIN
e2e_log "binary under test: $NTA_BIN"

# --- the lab ------------------------------------------------------------------------------
E2E_PHASE=lab_up
e2e_section "lab up"
t=$SECONDS
lab_up
e2e_log "lab up in $((SECONDS - t))s"
[ -z "$build_error" ] || E2E_CASE=build e2e_fail "$build_error"

# --- case files ---------------------------------------------------------------------------
E2E_PHASE=cases
cases=()
for f in "$E2E_DIR"/[0-9][0-9]-*.sh; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .sh)
    if [ "$#" -gt 0 ]; then
        keep=0
        for prefix in "$@"; do
            case "$name" in "$prefix"*) keep=1 ;; esac
        done
        [ "$keep" -eq 1 ] || continue
    fi
    cases+=("$f")
done
[ "${#cases[@]}" -gt 0 ] || E2E_CASE=run e2e_fail "no case file matched ${*:-tests/e2e/[0-9][0-9]-*.sh}"

for f in "${cases[@]}"; do
    name=$(basename "$f" .sh)
    e2e_section "case $name"
    read -r p0 f0 < <(e2e_counts "$E2E_RESULTS")
    t=$SECONDS
    rc=0
    # in the background + wait, so that INT/TERM are handled at once (e2e_finish stops it)
    E2E_CASE=$name timeout -k 10 "${NTA_E2E_CASE_TIMEOUT:-600}" bash "$f" </dev/null &
    E2E_CHILD=$!
    wait "$E2E_CHILD" || rc=$?
    E2E_CHILD=""
    read -r p1 f1 < <(e2e_counts "$E2E_RESULTS")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        E2E_CASE=$name e2e_fail "case file timed out after ${NTA_E2E_CASE_TIMEOUT:-600}s"
    elif [ "$rc" -ne 0 ] && [ "$f1" -eq "$f0" ]; then
        E2E_CASE=$name e2e_fail "case file exited $rc without recording a failure (harness error)"
    fi
    read -r p1 f1 < <(e2e_counts "$E2E_RESULTS")
    e2e_log "$name: $((p1 - p0)) passed, $((f1 - f0)) failed in $((SECONDS - t))s"
done

E2E_PHASE=finished
