#!/usr/bin/env bash
# tests/run-all.sh: the test command of nta7516-milter. Runs from any directory.
#
#   0. as root: the Debian packages the tests use (tests/e2e/lib.sh lab_install)
#   1. cargo build --locked
#   2. cargo test --locked --all-targets        (unit, integration and hermetic DNS tests)
#   3. tests/e2e/run.sh                         (end-to-end lab: Knot + Unbound in a network
#                                                namespace; installs its Debian packages)
#
# The end-to-end lab needs root on Debian 12 (apt-get, network namespaces, port 53). Without
# root this command FAILS, unless NTA_SKIP_E2E=1 is set to skip the lab explicitly (it then
# says so loudly). The last line is "e2e: N passed, N failed"; the exit status is non-zero
# when anything failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

section() { printf '\n##### %s\n' "$*"; }

skip_e2e=0
if [ "${NTA_SKIP_E2E:-0}" = 1 ]; then
    skip_e2e=1
elif [ "$(id -u)" -ne 0 ]; then
    printf 'tests/run-all.sh: ERROR: the end-to-end tests (tests/e2e) need root on Debian 12\n' >&2
    printf '  (apt-get, network namespaces, DNS servers on port 53). Run as root, or set\n' >&2
    printf '  NTA_SKIP_E2E=1 to skip them explicitly. Nothing was run.\n' >&2
    exit 1
fi

t0=$SECONDS
if [ "$skip_e2e" -eq 0 ]; then
    # The cargo tests use real tools too (python3-dkim as the independent DKIM verifier,
    # openssl, python3's email package for the footer corpus): install the lab's Debian
    # packages first, so a fresh machine runs them instead of failing for a missing tool.
    section "Debian packages of the tests"
    # shellcheck source=e2e/lib.sh
    . "$ROOT/tests/e2e/lib.sh"
    lab_install
fi
section "cargo build --locked"
cargo build --locked

section "cargo test --locked --all-targets"
cargo test --locked --all-targets
printf 'cargo build + test: %ss\n' "$((SECONDS - t0))"

if [ "$skip_e2e" -eq 1 ]; then
    printf '\n'
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n'
    printf '!!! END-TO-END TESTS SKIPPED (NTA_SKIP_E2E=1): tests/e2e did NOT run.\n'
    printf '!!! Only the cargo tests above were run. Run as root without NTA_SKIP_E2E for all.\n'
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n'
    exit 0
fi

section "tests/e2e/run.sh"
target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
NTA_BIN=$(realpath -m "$target_dir/debug/nta7516-milter")
export NTA_BIN
exec "$ROOT/tests/e2e/run.sh"
