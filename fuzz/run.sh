#!/bin/sh
# Fuzz one target at low priority until it has run EXECS executions or SECONDS have
# passed, whichever comes first, then print its executions and crashes.
# Usage: fuzz/run.sh TARGET SECONDS [EXECS]  (after `cargo afl build --release`)
set -eu
cd "$(dirname "$0")"
target=$1
seconds=$2
execs=${3:-}
export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1
mkdir -p out
# -E stops after that many executions (AFL++); -V after that many seconds.
nice -n 19 cargo afl fuzz -V "$seconds" ${execs:+-E "$execs"} -i "seeds/$target" \
  -o "out/$target" "target/release/$target" >"out-$target.log" 2>&1 || true
grep -E 'execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|run_time' \
  "out/$target/default/fuzzer_stats"
