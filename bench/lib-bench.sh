# shellcheck shell=bash
# bench/lib-bench.sh: what the bench scripts share (sourced, not run, after
# tests/e2e/lib.sh): installing their packages and CPU accounting.
#
# The caller sets BENCH_PKGS (Debian packages it needs) and CG_GROUPS (one child cgroup
# per component it measures) and defines blog (its log line); it calls bench_install,
# cg_setup once, and cg_teardown in its EXIT trap.

# bench_install : apt-get install the BENCH_PKGS that are missing (three tries)
bench_install() {
    local p missing=() try
    for p in "${BENCH_PKGS[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    blog "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    printf '%s\n' "${E2E_DEBCONF[@]}" | debconf-set-selections >/dev/null 2>&1 || true
    for try in 1 2 3; do
        if timeout 600 apt-get update -q >/dev/null 2>&1 &&
            timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
            return 0
        fi
        sleep $((try * 5))
    done
    e2e_die "could not install: ${missing[*]}"
}


# CPU accounting: a cpuacct cgroup (v1 here; v2 "cpu.stat" also handled) for the whole run
# with one child per component. Optional: without a writable cgroup hierarchy the CPU
# columns read "n/a".
CG=""
CG_V=""
cg_setup() {
    local base
    if [ -d /sys/fs/cgroup/cpuacct ] && [ -w /sys/fs/cgroup/cpuacct ]; then
        base=/sys/fs/cgroup/cpuacct CG_V=1
    elif [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -w /sys/fs/cgroup ]; then
        base=/sys/fs/cgroup CG_V=2
    else
        blog "no writable cpuacct cgroup: no CPU breakdown"
        return 0
    fi
    CG="$base/nta7516-bench-$$"
    if ! mkdir "$CG" 2>/dev/null; then
        CG=""
        blog "cannot create a cgroup under $base: no CPU breakdown"
        return 0
    fi
    local g
    for g in "${CG_GROUPS[@]}"; do mkdir "$CG/$g"; done
    echo $$ >"$CG/cgroup.procs"
}
# cg_ns GROUP : CPU nanoseconds used by GROUP ("" = the whole run) so far
cg_ns() {
    [ -n "$CG" ] || {
        echo 0
        return
    }
    if [ "$CG_V" = 1 ]; then
        cat "$CG/${1:+$1/}cpuacct.usage"
    else
        awk '$1 == "usage_usec" { printf "%d\n", $2 * 1000 }' "$CG/${1:+$1/}cpu.stat"
    fi
}
# cg_move GROUP PID : move a running process into GROUP
cg_move() { [ -z "$CG" ] || echo "$2" >"$CG/$1/cgroup.procs" 2>/dev/null || true; }
# CGX DIR CMD... : run CMD in cgroup DIR (a command, so it works under ip netns exec)
# shellcheck disable=SC2016 # $$, $1, $@ belong to the inner sh
CGX=(sh -c 'g=$1; shift; if [ -n "$g" ]; then echo $$ >"$g/cgroup.procs"; fi; exec "$@"' cgx)
cgdir() { [ -n "$CG" ] && printf '%s/%s\n' "$CG" "$1" || printf '\n'; }

cg_teardown() {
    [ -n "$CG" ] || return 0
    local base g i
    base=$(dirname "$CG")
    echo $$ >"$base/cgroup.procs" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        for g in "${CG_GROUPS[@]}"; do rmdir "$CG/$g" 2>/dev/null || true; done
        rmdir "$CG" 2>/dev/null && break
        sleep 0.1
    done
    [ ! -d "$CG" ] || blog "could not remove cgroup $CG (processes left?)"
    CG=""
}

# /proc/stat: "busy steal total" jiffies of the whole machine
proc_stat() {
    awk '$1 == "cpu" { busy = $2 + $3 + $4 + $7 + $8; st = $9; tot = $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; print busy, st, tot; exit }' /proc/stat
}

# snap : one line "t_ns cg_all <one per CG_GROUPS, in order> busy steal total"
snap() {
    local g line
    line="$(date +%s%N) $(cg_ns "")"
    for g in "${CG_GROUPS[@]}"; do line+=" $(cg_ns "$g")"; done
    printf '%s %s\n' "$line" "$(proc_stat)"
}

