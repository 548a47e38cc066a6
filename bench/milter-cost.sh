#!/usr/bin/env bash
# bench/milter-cost.sh: where nta7516-milter's per-message cost goes (investigation helper
# for bench/postfix-throughput.sh; same lab, same bench Postfix instance, same load).
#
#     sudo bench/milter-cost.sh
#
# Steps, one after the other, each: postfix reload, warm-up, BENCH_MESSAGES (1000) messages
# with smtp-source -s 20 -l 10240 -N, drained; CPU per message from the cgroups, and
# context switches + CPU of the milter process from `perf stat -p` (threads included):
#     bare             no milter
#     opendkim         OpenDKIM, RSA-2048 signing, unix socket
#     nta              nta7516-milter (unix sockets), as in postfix-throughput.sh: route map,
#                      footer, RSA-2048 DKIM, audit file
#     nta-nomap        the same without transport_maps (no route lookups)
#     nta-nofooter     ... and without the footer ([footer] text = html = "")
#     nta-nodkim       ... and without DKIM signing (no [[dkim]]; own domain then
#                      nodkim.lab.test, since unsigned mail from an own domain is refused)
#     nta-noaudit      ... and without the audit file (journal/stderr only)
# The daemon's configuration is changed with SIGHUP between steps. The differences between
# neighbouring steps are the cost of each feature; "nta-noaudit" minus "bare" is the cost
# of the milter conversation itself (Postfix side and daemon side).
# Then one syscall census per milter (strace -c -f, 100 messages, one session).
#
# Needs perf (linux-perf) and strace; BENCH_ROUNDS (default 2) repeats the step list.

set -euo pipefail
BENCH_SOURCE_ONLY=1
# shellcheck source-path=SCRIPTDIR source=postfix-throughput.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/postfix-throughput.sh"

N=${BENCH_MESSAGES:-1000}
ROUNDS=${BENCH_ROUNDS:-2}
WARMUP=${BENCH_WARMUP:-100}
VARIANTS=(bare opendkim nta-unix)
STEPS=(bare opendkim nta nta-nomap nta-nofooter nta-nodkim nta-noaudit)
BENCH_PKGS+=(strace linux-perf)

# cost_config NAME FOOTER(1/0) DKIM(1/0) AUDIT(1/0) : the nta-unix config for a step
cost_config() {
    local extra=""
    extra+=$'[server]\n'"milter = \"unix:$BQ/nta7516-milter/milter.sock\""$'\n'"map = \"unix:$BQ/nta7516-milter/map.sock\""$'\nsocket_group = "postfix"\n\n'
    # without a key the sender's domain must not be an own domain: the daemon refuses to
    # send unsigned mail from an own domain (451), and check-config an own domain without
    # a [[dkim]] key
    if [ "$3" = 1 ]; then extra+=$'[domains]\nown = ["sender.lab.test"]\n\n'; fi
    extra+=$'[outbound]\n'"networks = [\"$BENCH_ADDR/32\", \"127.0.0.1/32\"]"$'\n\n'
    [ "$2" = 1 ] || extra+=$'[footer]\ntext = ""\nhtml = ""\n\n'
    [ "$3" = 1 ] && extra+=$'[[dkim]]\ndomain = "sender.lab.test"\n'"selector = \"$PF_DKIM_SELECTOR\""$'\n'"key = \"$LAB/dkim/sender.pem\""$'\n\n'
    [ "$4" = 1 ] && extra+=$'[audit]\n'"file = \"$LAB/audit/nta-unix.log\""$'\n'
    nta_write_config "$LAB/nta-unix.toml.new" "$E2E_RESOLVER_ADDR" "$extra"
    "$NTA_BIN" check-config "$LAB/nta-unix.toml.new" >"$LAB/log/cost-check-$1.out" 2>&1 ||
        e2e_die "step $1: config does not check: $(cat "$LAB/log/cost-check-$1.out")"
    mv "$LAB/nta-unix.toml.new" "$LAB/nta-unix.toml"
}

daemon_reload() {
    local pid before
    pid=$(cat "$LAB/perf/nta-unix.pid")
    before=$(grep -c 'configuration reloaded' "$LAB/log/nta-unix.out" || true)
    kill -HUP "$pid"
    wait_for "nta-unix reload" 50 0.1 \
        sh -c "[ \"\$(grep -c 'configuration reloaded' '$LAB/log/nta-unix.out')\" -gt $before ]" ||
        e2e_die "nta-unix did not reload (see $LAB/log/nta-unix.out)"
}

COST="" # result lines

# step NAME ROUND
step() {
    local name=$1 r=$2 port maps=0 mpid="" s0 s1 t1 rc=0 pstat="" cs="nan" tc="nan"
    case "$name" in
    bare) port=10030 ;;
    opendkim) port=10031 mpid=$(cat "$LAB/pids/opendkim.pid") ;;
    nta) port=10032 maps=1 ;;
    nta-*) port=10032 ;;
    esac
    case "$name" in
    nta) cost_config "$name" 1 1 1 ;;
    nta-nomap) cost_config "$name" 1 1 1 ;;
    nta-nofooter) cost_config "$name" 0 1 1 ;;
    nta-nodkim) cost_config "$name" 0 0 1 ;;
    nta-noaudit) cost_config "$name" 0 0 0 ;;
    esac
    if [[ "$name" == nta* ]]; then
        daemon_reload
        mpid=$(cat "$LAB/perf/nta-unix.pid")
    fi
    if [ "$maps" = 1 ]; then bench_maps nta-unix; else bench_maps bare; fi
    run_in_lab postfix -c "$BE" reload >/dev/null 2>&1
    sleep 1
    wait_for "listener $port" 50 0.2 bench_smtp_up "$port" || e2e_die "listener $port down"
    source_run "$port" "$WARMUP" "warm-$name-$r@$RCPT_DOMAIN" -N >"$LAB/log/cost-warm-$name-$r.out" 2>&1 ||
        e2e_die "$name: warm-up refused: $(tail -n 2 "$LAB/log/cost-warm-$name-$r.out")"
    wait_drain || e2e_die "$name: warm-up not drained"
    if [ -n "$mpid" ]; then
        pstat="$LAB/log/cost-perfstat-$name-$r.out"
        perf stat -x, -e context-switches,task-clock -p "$mpid" -o "$pstat" &
        PERF_PID=$!
        sleep 0.5
    fi
    s0=$(snap)
    source_run "$port" "$N" "bench@$RCPT_DOMAIN" -N >"$LAB/log/cost-run-$name-$r.out" 2>&1 || rc=$?
    t1=$(date +%s%N)
    wait_drain || rc=99
    s1=$(snap)
    if [ -n "$mpid" ]; then
        perf_stop
        cs=$(awk -F, '$3 == "context-switches" { print $1 }' "$pstat")
        tc=$(awk -F, '$3 == "task-clock" { print $1 }' "$pstat")
    fi
    COST+="$name	$r	$N	$t1	$s0	$s1	$cs	$tc	$rc"$'\n'
    blog "$name round $r: $(printf '%s' "$COST" | tail -n 1 | awk -F'\t' '{ split($5, a, " "); split($6, b, " "); printf "accept %.0f msg/s, CPU all %.2f ms/msg, milter ctx switches/msg %s", $3 / (($4 - a[1]) / 1e9), (b[2] - a[2]) / $3 / 1e6, ($7 == "nan" ? "-" : sprintf("%.1f", $7 / $3)) }')"
}

# census NAME PORT PID : strace -c -f on the milter for 100 messages over one session
census() {
    local name=$1 port=$2 pid=$3 spid
    strace -c -f -p "$pid" -o "$LAB/log/strace-$name.out" 2>/dev/null &
    spid=$!
    sleep 1
    SESSIONS=1 source_run "$port" 100 "census-$name@$RCPT_DOMAIN" -N >"$LAB/log/census-$name.out" 2>&1 || true
    wait_drain || true
    kill -INT "$spid" 2>/dev/null || kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    awk -v name="$name" '$1 ~ /^[0-9.]+$/ && NF >= 5 { c = $4; s = $NF; if (s != "total") calls[s] = c }
        END { for (s in calls) printf "%s\t%s\t%.1f\n", name, s, calls[s] / 100 }' "$LAB/log/strace-$name.out" \
        >>"$LAB/census.tsv"
}

cost_main() {
    local r name t_start
    t_start=$(date +%s)
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    bench_install
    build_binary
    cg_setup
    lab_up >&2
    for name in knotd unbound; do [ ! -f "$LAB/pids/$name.pid" ] || cg_move dns "$(cat "$LAB/pids/$name.pid")"; done
    mkdir -p "$LAB/pf"
    pf_dkim_key >&2
    bench_pf_setup
    opendkim_start
    nta_start
    bench_pf_start
    sink_start
    for ((r = 1; r <= ROUNDS; r++)); do
        for name in "${STEPS[@]}"; do step "$name" "$r"; done
    done
    # syscall census: OpenDKIM and the full nta setup
    : >"$LAB/census.tsv"
    bench_maps bare
    run_in_lab postfix -c "$BE" reload >/dev/null 2>&1
    sleep 1
    census opendkim 10031 "$(cat "$LAB/pids/opendkim.pid")"
    cost_config nta 1 1 1
    daemon_reload
    bench_maps nta-unix
    run_in_lab postfix -c "$BE" reload >/dev/null 2>&1
    sleep 1
    census nta 10032 "$(cat "$LAB/perf/nta-unix.pid")"
    {
        printf '## Where nta7516-milter'"'"'s per-message cost goes (%s)\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf -- '- smtp-source -s %s -l %s -m %s -N, %s round(s); loadavg %s before, %s after; commit %s\n\n' \
            "$SESSIONS" "$SIZE" "$N" "$ROUNDS" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)" \
            "$(git -C "$BENCH_REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        printf '%s' "$COST" | awk -F'\t' -v ncpu="$(nproc)" '
        {
            v = $1; n = $3; split($5, a, " "); split($6, b, " ");
            if (!(v in seen)) { seen[v] = 1; order[++nv] = v }
            c[v]++; acc[v] += n / (($4 - a[1]) / 1e9);
            all[v] += (b[2] - a[2]) / n / 1e6; pf[v] += (b[3] - a[3]) / n / 1e6;
            mil[v] += (v == "opendkim" ? (b[5] - a[5]) : (b[4] - a[4])) / n / 1e6;
            if ($7 != "nan" && $7 != "") { cs[v] += $7 / n; tc[v] += $8 / n; pc[v]++ }
            el = (b[1] - a[1]) / 1e9; busy = (b[8] - a[8] + b[9] - a[9]) * 10;
            fg[v] += (busy - (b[2] - a[2]) / 1e6) / (el * 1000 * ncpu) * 100;
            if ($9 != 0) bad[v] = 1;
        }
        END {
            print "| Step | Accept msg/s | CPU ms/msg: all | Postfix | milter process | Milter context switches/msg | Milter task-clock ms/msg | Other users % |";
            print "|---|---|---|---|---|---|---|---|";
            for (k = 1; k <= nv; k++) {
                v = order[k];
                printf "| %s%s | %.0f | %.2f | %.2f | %.2f | %s | %s | %.0f |\n", v, (v in bad ? " (errors)" : ""), acc[v] / c[v], all[v] / c[v], pf[v] / c[v], mil[v] / c[v],
                    (pc[v] ? sprintf("%.1f", cs[v] / pc[v]) : "-"), (pc[v] ? sprintf("%.2f", tc[v] / pc[v]) : "-"), fg[v] / c[v];
            }
        }'
        printf '\nSyscalls per message in the milter process (strace -c -f, 100 messages over one SMTP session, new connection per message):\n\n'
        awk -F'\t' '{ v[$2, $1] = $3; if (!($2 in s)) { s[$2] = 1; S[++ns] = $2 }; tot[$1] += $3 }
            END {
                print "| Syscall | opendkim | nta |"; print "|---|---|---|";
                for (i = 1; i <= ns; i++) if (v[S[i], "opendkim"] + v[S[i], "nta"] >= 0.5) printf "| %s | %.1f | %.1f |\n", S[i], v[S[i], "opendkim"], v[S[i], "nta"];
                printf "| **total** | **%.1f** | **%.1f** |\n", tot["opendkim"], tot["nta"];
            }' "$LAB/census.tsv"
        printf '\nWall time: %s s.\n' "$(($(date +%s) - t_start))"
    } >"$LAB/cost.md"
    cat "$LAB/cost.md"
    [ -z "${BENCH_SUMMARY:-}" ] || cp "$LAB/cost.md" "$BENCH_SUMMARY"
}

cost_main "$@"
