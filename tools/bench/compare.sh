#!/usr/bin/env bash
# Compare ringqd with its Debian peers, on this machine, in one run.
#
#   tools/bench/compare.sh [--quick] [OUTDIR]      (default /tmp/ringq-compare)
#
# Installs the peers with apt-get if missing (task-spooler, beanstalkd,
# redis-server, parallel, gnuplot-nox), starts every server itself in a temporary
# directory on a Unix socket (never the system services), and stops each by
# the pid it started. Shapes, each run RUNS times (3; 1 with --quick), the
# median reported, every server fresh for every run:
#
#   submit   durable pipelined submits at 1x1, 8x16 and 64x16
#            (connections x depth): ringqd --durability full, beanstalkd
#            -b DIR -f 0 (fsync every write), redis appendonly yes +
#            appendfsync always. Same body (a ringq submit's JSON), same
#            pipelining, same latency definition (ringq-bench --target).
#            Before each 1x1 round, the disk's floor under it (ringq-bench
#            fsync: a one-row WAL commit's writes and fdatasync, back to
#            back, in a file beside the servers').
#   e2e      2000 /bin/true jobs on 2 slots: xargs -P2 (the spawn floor, no
#            queue), GNU parallel -j2 (what many reach for first), tsp -S 2
#            (one tsp process per job), ringq batch submit + wait
#            (ringq-bench e2e, with ringqd's CPU per job and the timed steps
#            of a job), ringq with one `ringq submit` process per job (with
#            durability=full, and =normal, which like tsp fsyncs nothing);
#            and the submit rate of one process per job.
#   one      one job at a time on an idle ringqd, submit -> wait answer,
#            beside a bare posix_spawn + waitpid of the same command in the
#            same run (ringq-bench one): what ringq adds to a job nobody
#            waits behind, against this machine's spawn floor; and the
#            disk's floor under a durable submit (--fsync-dir: a one-row
#            WAL commit's writes and an fdatasync, beside the database).
#   sweep    open loop at 0.25x..2x of each system's 8x16 capacity: p50/p99
#            of accepted submits against offered load -> sweep.csv, and
#            plot.sh turns it into sweep.png.
#   overload ringqd filled to its default high_water (10000), with no
#            reserve for root (the bench runs as root, and the reserve's
#            accepted submits are not what is measured here), then offered
#            2x its capacity: rejected/s, reject latency, RSS start -> end;
#            and pings offered at the same rate to the same full ringqd, the
#            floor a reject is set against (the two in turn, first one then
#            the other, so neither always meets a machine the other warmed).
#            (The sweep's 2x point shows the accepted rate under overload
#            when the queue has room.)
#
# --report measures nothing: it renders OUTDIR's results.csv, results.json,
# table.md and sweep.png again from the runs.txt a run left there (give
# --quick too if that run was quick).
#
# OUTDIR gets runs.txt (every run, one key=value line each), results.csv
# and results.json (medians), sweep.csv, table.md (what is printed),
# machine.txt and sweep.png. Every loop is bounded in count and time.
#
# Environment: RINGQ_BUILD (default <repo>/build) holds ringqd, ringq and
# ringq-bench.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${RINGQ_BUILD:-$REPO/build}
QUICK=0
REPORT=0
OUT=/tmp/ringq-compare

while [ $# -gt 0 ]; do
        case "$1" in
        --quick) QUICK=1 ;;
        --report) REPORT=1 ;;
        -h | --help)
                sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
                exit 0
                ;;
        -*) echo "compare.sh: unknown option $1" >&2; exit 64 ;;
        *) OUT=$1 ;;
        esac
        shift
done

if [ "$QUICK" = 1 ]; then
        RUNS=1 N_SUBMIT=10000 T_SUBMIT=2s E2E_JOBS=200 ONE_JOBS=50 T_SWEEP=1s LEVELS="0.5 1 2" T_OVER=2s
else
        RUNS=3 N_SUBMIT=100000 T_SUBMIT=5s E2E_JOBS=2000 ONE_JOBS=300 T_SWEEP=3s LEVELS="0.25 0.5 0.75 1 1.5 2" T_OVER=5s
fi
SHAPES="1x1 8x16 64x16"
SWEEP_SHAPE=8x16
# Bounds: one per-job command, a server's start, the wait for a batch.
CMD_TIMEOUT=10
START_TIMEOUT=10
WAIT_TIMEOUT=600
LOOP_BUDGET=900 # seconds for one loop of one process per job

if [ "$REPORT" = 0 ]; then
for b in ringqd ringq ringq-bench; do
        [ -x "$BUILD/$b" ] || { echo "compare.sh: $BUILD/$b missing; build first (cmake --build build)" >&2; exit 69; }
done

# ---- peers ----
install_peers() {
        local missing=() pair
        for pair in beanstalkd:beanstalkd redis-server:redis-server tsp:task-spooler parallel:parallel gnuplot:gnuplot-nox; do
                command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        echo "installing ${missing[*]}" >&2
        local sudo=
        [ "$(id -u)" = 0 ] || sudo=sudo
        # The packages may start their system services; nothing here uses
        # them (every server below is our own, on a socket in $WORK).
        $sudo timeout 600 apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo timeout 900 apt-get install -y -qq "${missing[@]}" >&2
}
install_peers
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ "$REPORT" = 0 ]; then
WORK=$(mktemp -d /tmp/ringq-compare-work.XXXXXX)
cd "$WORK" # nothing lands in the caller's directory
# Private copies, so a rebuild during the run cannot change what is measured.
mkdir "$WORK/bin"
cp "$BUILD/ringqd" "$BUILD/ringq" "$BUILD/ringq-bench" "$WORK/bin/"
RINGQD=$WORK/bin/ringqd
RINGQ=$WORK/bin/ringq
BENCH=$WORK/bin/ringq-bench
PIDS=()

# Stop one server by the pid we started: TERM, up to 10 s, then KILL.
stop_pid() {
        local pid=$1 i
        kill -TERM "$pid" 2>/dev/null || return 0
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
}

cleanup() {
        local p
        for p in "${PIDS[@]}"; do stop_pid "$p"; done
        rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_path() { # wait_path PATH PID: the socket appears, or fail
        local i
        for ((i = 0; i < START_TIMEOUT * 20; i++)); do
                [ -S "$1" ] && return 0
                kill -0 "$2" 2>/dev/null || return 1
                sleep 0.05
        done
        return 1
}

# start_server NAME -> sets SRV_PID, SRV_TARGET, SRV_SOCK; fresh dir each time.
start_server() {
        local name=$1 dir
        shift
        dir=$(mktemp -d "$WORK/$name.XXXX")
        case "$name" in
        ringq | ringq-normal | ringq-hw)
                local dur=full hw=100000000
                [ "$name" = ringq-normal ] && dur=normal
                local reserve=()
                [ "$name" = ringq-hw ] && hw=10000 reserve=(--root-reserve-jobs 0)
                SRV_SOCK=$dir/ringq.sock
                "$RINGQD" --state-dir "$dir/state" --socket "$SRV_SOCK" --config /dev/null \
                        --durability "$dur" --high-water "$hw" "${reserve[@]}" "$@" >"$dir/log" 2>&1 &
                SRV_TARGET=ringq
                ;;
        beanstalkd)
                SRV_SOCK=$dir/bs.sock
                mkdir "$dir/wal"
                beanstalkd -l "unix:$SRV_SOCK" -b "$dir/wal" -f 0 >"$dir/log" 2>&1 &
                SRV_TARGET=beanstalkd:unix:$SRV_SOCK
                ;;
        redis)
                SRV_SOCK=$dir/redis.sock
                redis-server --port 0 --unixsocket "$SRV_SOCK" --dir "$dir" --appendonly yes \
                        --appendfsync always --save '' --daemonize no >"$dir/log" 2>&1 &
                SRV_TARGET=redis:unix:$SRV_SOCK
                ;;
        esac
        SRV_PID=$!
        PIDS+=("$SRV_PID")
        if ! wait_path "$SRV_SOCK" "$SRV_PID"; then
                echo "compare.sh: $name did not start:" >&2
                cat "$dir/log" >&2
                exit 70
        fi
}

stop_server() {
        local p keep=()
        stop_pid "$SRV_PID"
        for p in "${PIDS[@]}"; do [ "$p" = "$SRV_PID" ] || keep+=("$p"); done
        PIDS=("${keep[@]+"${keep[@]}"}")
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
ms_to_s() { awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }'; }
per_s() { awk -v n="$1" -v m="$2" 'BEGIN { printf "%.1f", (m > 0 ? n * 1000 / m : 0) }'; }

fi
RUNS_TXT=$OUT/runs.txt
SWEEP_CSV=$OUT/sweep.csv
if [ "$REPORT" = 0 ]; then
        : >"$RUNS_TXT"
elif [ ! -s "$RUNS_TXT" ]; then
        echo "compare.sh: --report: $RUNS_TXT is missing or empty" >&2
        exit 66
fi
record() { # record SECTION SYSTEM SHAPE RUN KV...
        echo "section=$1 system=$2 shape=$3 run=$4 ${*:5}" >>"$RUNS_TXT"
}

# median SECTION SYSTEM SHAPE KEY: the median of KEY over the runs.
median() {
        awk -v sec="$1" -v sys="$2" -v shp="$3" -v key="$4" '
                { delete f; for (i = 1; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) }
                  if (f["section"] == sec && f["system"] == sys && f["shape"] == shp && (key in f)) v[n++] = f[key] + 0 }
                END { if (!n) { print "-"; exit }
                      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
                      m = n % 2 ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
                      printf "%.6g\n", m }' "$RUNS_TXT"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'; }

# per_job_loop OUTFILE CMD...: CMD run E2E_JOBS times, one process each, as
# a user's shell loop would; stdout to OUTFILE. No wrapper per command, so
# the whole loop is what is bounded in time.
per_job_loop() {
        local out=$1
        shift
        timeout "$LOOP_BUDGET" bash -c 'n=$1; shift; for ((i = 0; i < n; i++)); do "$@"; done' \
                _ "$E2E_JOBS" "$@" >"$out"
}

log() { echo "[$(date +%T)] $*" >&2; }

if [ "$REPORT" = 0 ]; then
{
        echo "date: $(date -Is)"
        echo "host: $(uname -srm)"
        echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
        echo "memory: $(free -h | awk '/^Mem:/ { print $2 }')"
        echo "filesystem of /tmp: $(df -T /tmp | awk 'NR == 2 { print $2 " on " $1 }')"
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        dirty=$([ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo " + uncommitted changes" || true)
        echo "ringq: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$dirty, $("$RINGQ" --version 2>/dev/null | head -1)"
        echo "beanstalkd: $(beanstalkd -v 2>&1 | head -1)"
        echo "redis: $(redis-server --version | head -1)"
        echo "task-spooler: $(dpkg-query -W -f '${Version}' task-spooler 2>/dev/null || echo '?')"
        echo "parallel: $(parallel --version 2>/dev/null | head -1)"
        echo "runs per shape: $RUNS (median reported); quick: $QUICK"
} >"$OUT/machine.txt"

# ---- 1. durable submits ----
for shape in $SHAPES; do
        k=${shape%x*} d=${shape#*x}
        for run in $(seq "$RUNS"); do
                if [ "$shape" = 1x1 ]; then
                        # The disk's floor under that stream, in the same
                        # minute: one one-row WAL commit's fsync after another.
                        log "submit 1x1 disk floor run $run"
                        line=$("$BENCH" fsync --fsync-dir "$WORK" -n 2000 -t "$T_SUBMIT")
                        record submit floor 1x1 "$run" "$line"
                fi
                for sys in ringq beanstalkd redis; do
                        log "submit $shape $sys run $run"
                        start_server "$sys"
                        line=$("$BENCH" submit -s "$SRV_SOCK" --target "$SRV_TARGET" -c "$k" -d "$d" \
                                -n "$N_SUBMIT" -t "$T_SUBMIT" --pid "$SRV_PID")
                        record submit "$sys" "$shape" "$run" "$line"
                        stop_server
                done
        done
done

# ---- 2. e2e: 2000 /bin/true on 2 slots ----
for run in $(seq "$RUNS"); do
        log "e2e xargs run $run"
        t0=$(now_ms)
        seq "$E2E_JOBS" | timeout "$WAIT_TIMEOUT" xargs -P2 -n1 /bin/true
        t1=$(now_ms)
        record e2e xargs e2e "$run" "jobs=$E2E_JOBS wall_s=$(ms_to_s $((t1 - t0))) jobs_per_s=$(per_s "$E2E_JOBS" $((t1 - t0)))"

        log "e2e parallel run $run"
        t0=$(now_ms)
        seq "$E2E_JOBS" | HOME=$WORK timeout "$WAIT_TIMEOUT" parallel --will-cite -j2 -N0 /bin/true
        t1=$(now_ms)
        record e2e parallel e2e "$run" "jobs=$E2E_JOBS wall_s=$(ms_to_s $((t1 - t0))) jobs_per_s=$(per_s "$E2E_JOBS" $((t1 - t0)))"

        log "e2e tsp run $run"
        tdir=$(mktemp -d "$WORK/tsp.XXXX")
        mkdir "$tdir/tmp"
        (
                export TS_SOCKET=$tdir/ts.sock TMPDIR=$tdir/tmp TS_MAXFINISHED=$((E2E_JOBS + 10))
                timeout "$CMD_TIMEOUT" tsp -S 2
                tsp_pid=$(ss -xlpn 2>/dev/null | awk -v s="$TS_SOCKET" '$5 == s' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
                t0=$(now_ms)
                per_job_loop "$tdir/ids" tsp /bin/true || true
                t1=$(now_ms)
                last=$(tail -n 1 "$tdir/ids")
                fails=$((E2E_JOBS - $(wc -l <"$tdir/ids")))
                [ -n "$last" ] && timeout "$WAIT_TIMEOUT" tsp -w "$last" >/dev/null 2>&1 || true
                # The other slot may still run one: poll the list, bounded.
                for ((i = 0; i < 600; i++)); do
                        timeout "$CMD_TIMEOUT" tsp -l | awk 'NR > 1 && ($2 == "running" || $2 == "queued") { n++ } END { exit n > 0 }' && break
                        sleep 0.1
                done
                t2=$(now_ms)
                done_n=$(timeout "$CMD_TIMEOUT" tsp -l | awk 'NR > 1 && $2 == "finished" && $4 == 0 { n++ } END { print n + 0 }')
                timeout "$CMD_TIMEOUT" tsp -K || true
                [ -n "$tsp_pid" ] && stop_pid "$tsp_pid"
                echo "jobs=$E2E_JOBS succeeded=$done_n submit_fail=$fails submit_s=$(ms_to_s $((t1 - t0))) submit_per_s=$(per_s "$E2E_JOBS" $((t1 - t0))) wall_s=$(ms_to_s $((t2 - t0))) jobs_per_s=$(per_s "$done_n" $((t2 - t0)))" >"$tdir/result"
        )
        record e2e tsp e2e "$run" "$(cat "$tdir/result")"

        for sys in ringq ringq-normal; do
                log "e2e $sys batch run $run"
                start_server "$sys" --workers 2
                line=$("$BENCH" e2e -s "$SRV_SOCK" -n "$E2E_JOBS" --cmd /bin/true -t "${WAIT_TIMEOUT}s" --pid "$SRV_PID")
                record e2e "$sys" e2e "$run" "$line"
                stop_server
        done

        # One ringq submit process per job, as a shell loop submits: with
        # durability=normal too, which promises what tsp does (nothing
        # across a power cut), so the fsync's share of the gap shows.
        for sys in ringq ringq-normal; do
                log "e2e $sys one process per job run $run"
                start_server "$sys" --workers 2
                ids=$WORK/ids.$run
                : >"$ids"
                t0=$(now_ms)
                per_job_loop "$ids" "$RINGQ" -s "$SRV_SOCK" submit -- /bin/true || true
                t1=$(now_ms)
                fails=$((E2E_JOBS - $(wc -l <"$ids")))
                rc=0
                # ids as arguments, in chunks so no command line is too long.
                xargs -n 500 timeout "$WAIT_TIMEOUT" "$RINGQ" -s "$SRV_SOCK" wait --timeout "${WAIT_TIMEOUT}s" <"$ids" || rc=$?
                t2=$(now_ms)
                n=$(wc -l <"$ids")
                record e2e "$sys-per-process" e2e "$run" "jobs=$E2E_JOBS succeeded=$([ "$rc" = 0 ] && echo "$n" || echo 0) submit_fail=$fails submit_s=$(ms_to_s $((t1 - t0))) submit_per_s=$(per_s "$n" $((t1 - t0))) wall_s=$(ms_to_s $((t2 - t0))) jobs_per_s=$(per_s "$n" $((t2 - t0)))"
                stop_server
        done
done

# ---- 2b. one job at a time on an idle ringqd, against a bare spawn ----
for run in $(seq "$RUNS"); do
        log "one ringq run $run"
        start_server ringq --workers 2
        line=$("$BENCH" one -s "$SRV_SOCK" -n "$ONE_JOBS" --cmd /bin/true --pid "$SRV_PID" \
                --fsync-dir "$(dirname "$SRV_SOCK")/state")
        record one ringq one "$run" "$line"
        stop_server
done

# ---- 3. sweep: latency against offered load, open loop ----
echo "system,level,offered_per_s,accepted_per_s,p50_ms,p90_ms,p99_ms,p999_ms,unsent" >"$SWEEP_CSV"
for sys in ringq beanstalkd redis; do
        cap=$(median submit "$sys" "$SWEEP_SHAPE" accepted_per_s)
        [ "$cap" = "-" ] && continue
        for lv in $LEVELS; do
                rate=$(awk -v c="$cap" -v l="$lv" 'BEGIN { r = int(c * l); print r < 1 ? 1 : r }')
                for run in $(seq "$RUNS"); do
                        log "sweep $sys ${lv}x = $rate/s run $run"
                        start_server "$sys"
                        line=$("$BENCH" overload -s "$SRV_SOCK" --target "$SRV_TARGET" -c "${SWEEP_SHAPE%x*}" \
                                -d "${SWEEP_SHAPE#*x}" -r "$rate" -t "$T_SWEEP" --pid "$SRV_PID")
                        record sweep "$sys" "$lv" "$run" "$line"
                        stop_server
                done
                echo "$sys,$lv,$rate,$(median sweep "$sys" "$lv" accepted_per_s),$(median sweep "$sys" "$lv" latency_ms_p50),$(median sweep "$sys" "$lv" latency_ms_p90),$(median sweep "$sys" "$lv" latency_ms_p99),$(median sweep "$sys" "$lv" latency_ms_p999),$(median sweep "$sys" "$lv" unsent)" >>"$SWEEP_CSV"
        done
done

# ---- 4. ringqd's backpressure: at its high-water mark, at 2x capacity ----
# The queue is filled to high_water (10000) first, with jobs that do not
# start; then 2x the measured capacity is offered: every submit must be
# rejected at once, and memory must stay flat.
cap=$(median submit ringq "$SWEEP_SHAPE" accepted_per_s)
rate=$(awk -v c="$cap" 'BEGIN { r = int(2 * c); print r < 1 ? 1 : r }')
overload_rejects() {
        log "overload ringq full at high_water 10000, $rate/s offered, run $run"
        line=$("$BENCH" overload -s "$SRV_SOCK" -c 8 -d 16 -r "$rate" -t "$T_OVER" --pid "$SRV_PID")
        record overload ringq-hw 2x "$run" "$line"
}
overload_pings() {
        log "overload ringq pings at $rate/s to the same full ringqd, run $run"
        line=$("$BENCH" overload --ping -s "$SRV_SOCK" -c 8 -d 16 -r "$rate" -t "$T_OVER" --pid "$SRV_PID")
        record overload ringq-ping 2x "$run" "$line"
}
for run in $(seq "$RUNS"); do
        start_server ringq-hw
        "$BENCH" submit -s "$SRV_SOCK" -c 4 -d 16 -n 10000 -t 120s >/dev/null
        if [ $((run % 2)) = 1 ]; then
                overload_rejects
                overload_pings
        else
                overload_pings
                overload_rejects
        fi
        stop_server
done

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

fi
# ---- results ----
CSV=$OUT/results.csv
echo "section,system,shape,metric,median" >"$CSV"
emit() { # emit SECTION SYSTEM SHAPE METRIC...
        local m
        for m in "${@:4}"; do echo "$1,$2,$3,$m,$(median "$1" "$2" "$3" "$m")" >>"$CSV"; done
}
for shape in $SHAPES; do
        for sys in ringq beanstalkd redis; do
                emit submit "$sys" "$shape" accepted_per_s latency_ms_p50 latency_ms_p99 latency_ms_p999 \
                        latency_ms_max errors daemon_cpu_pct daemon_rss_end_kb
        done
done
for sys in xargs parallel tsp ringq ringq-normal ringq-per-process ringq-normal-per-process; do
        emit e2e "$sys" e2e wall_s jobs_per_s submit_per_s queue_wait_ms_p50 queue_wait_ms_p99 run_ms_p50 run_ms_p99 succeeded
done
PATH_STEPS="launch submit_commit start_commit exec run drain end_commit slot_idle"
for sys in ringq ringq-normal; do
        emit e2e "$sys" e2e daemon_cpu_us_per_job $(for st in $PATH_STEPS; do echo "job_path_ms_${st}_p50 job_path_ms_${st}_p99"; done)
done
emit one ringq one job_ms_p50 job_ms_p99 spawn_ms_p50 spawn_ms_p99 submit_ms_p50 added_ms_p50 added_beyond_submit_ms_p50 daemon_cpu_us_per_job \
        $(for st in $PATH_STEPS; do echo "job_path_ms_${st}_p50"; done)
emit overload ringq-ping 2x offered_per_s latency_ms_p50 latency_ms_p99
emit overload ringq-hw 2x offered_per_s accepted_per_s rejected_per_s latency_ms_p99 reject_latency_ms_p50 \
        reject_latency_ms_p99 daemon_rss_start_kb daemon_rss_end_kb

awk -F, 'NR == 1 { next }
        { printf "%s{\"section\":\"%s\",\"system\":\"%s\",\"shape\":\"%s\",\"metric\":\"%s\",\"median\":%s}",
                  n++ ? ",\n " : "[", $1, $2, $3, $4, ($5 == "-" ? "null" : $5) }
        END { print "]" }' "$CSV" >"$OUT/results.json"

g() { median "$@"; }
# The reject p99 over the ping p99 of each run (the two measured back to
# back against the same ringqd), then their median: "r1 r2 r3 (median m)".
overload_pairs() {
        awk '{ delete f; for (i = 1; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) }
               if (f["section"] != "overload" || f["shape"] != "2x") next
               if (f["system"] == "ringq-hw") rj[f["run"]] = f["reject_latency_ms_p99"] + 0
               if (f["system"] == "ringq-ping") pg[f["run"]] = f["latency_ms_p99"] + 0 }
             END { n = 0
                   for (r = 1; r in rj || r in pg; r++) if ((r in rj) && pg[r] > 0) v[n++] = rj[r] / pg[r]
                   if (!n) { print "-"; exit }
                   for (i = 0; i < n; i++) { out = out sprintf("%s%.2f", i ? ", " : "", v[i]) }
                   for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
                   m = n % 2 ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
                   printf "%s (median %.2f)\n", out, m }' "$RUNS_TXT"
}
{
        echo "## Durable submits (median of $RUNS; ringq-bench submit, $N_SUBMIT requests or $T_SUBMIT)"
        echo
        echo "| shape (conns x depth) | system | accepted/s | p50 ms | p99 ms | p99.9 ms | ringq/peer accepted/s | ringq/peer p99 | daemon CPU % |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
        for shape in $SHAPES; do
                ra=$(g submit ringq "$shape" accepted_per_s) rp=$(g submit ringq "$shape" latency_ms_p99)
                for sys in ringq beanstalkd redis; do
                        a=$(g submit "$sys" "$shape" accepted_per_s) p=$(g submit "$sys" "$shape" latency_ms_p99)
                        if [ "$sys" = ringq ]; then r1="" r2=""; else r1=$(ratio "$ra" "$a") r2=$(ratio "$rp" "$p"); fi
                        echo "| $shape | $sys | $a | $(g submit "$sys" "$shape" latency_ms_p50) | $p | $(g submit "$sys" "$shape" latency_ms_p999) | $r1 | $r2 | $(g submit "$sys" "$shape" daemon_cpu_pct) |"
                done
                [ "$shape" = 1x1 ] &&
                        echo "| 1x1 | disk floor: fsyncs back to back | $(g submit floor 1x1 fsyncs_per_s) | $(g submit floor 1x1 fsync_ms_p50) | $(g submit floor 1x1 fsync_ms_p99) | $(g submit floor 1x1 fsync_ms_p999) | | | |"
        done
        echo
        f=$(g submit floor 1x1 fsync_ms_p50)
        beyond() { awk -v a="$(g submit "$1" 1x1 latency_ms_p50)" -v f="$f" 'BEGIN { printf "%.3f", a - f }'; }
        echo "The floor under 1x1 is the disk's: a one-row WAL commit's writes and fdatasync, back to back in a file beside the servers' (ringq-bench fsync), p50 $f ms. Beyond it, at p50: ringq $(beyond ringq) ms, redis $(beyond redis) ms, beanstalkd $(beyond beanstalkd) ms (each also pays the client's round trip)."
        echo
        echo "## $E2E_JOBS /bin/true jobs on 2 slots (median of $RUNS)"
        echo
        echo "| system | wall s | jobs/s | ringq batch / this | submit/s | queue wait p50/p99 ms | run p50/p99 ms |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        rj=$(g e2e ringq e2e jobs_per_s)
        for sys in xargs parallel tsp ringq ringq-normal ringq-per-process ringq-normal-per-process; do
                case "$sys" in
                xargs) label="xargs -P2 (spawn floor, no queue)" ;;
                parallel) label="GNU parallel -j2" ;;
                tsp) label="tsp -S 2, one tsp per job" ;;
                ringq) label="ringq batch (ringq-bench e2e), durability=full" ;;
                ringq-normal) label="ringq batch, durability=normal" ;;
                ringq-per-process) label="ringq, one ringq submit per job" ;;
                ringq-normal-per-process) label="ringq, one ringq submit per job, durability=normal" ;;
                esac
                qw="-" rt="-"
                case "$sys" in ringq | ringq-normal)
                        qw="$(g e2e "$sys" e2e queue_wait_ms_p50)/$(g e2e "$sys" e2e queue_wait_ms_p99)"
                        rt="$(g e2e "$sys" e2e run_ms_p50)/$(g e2e "$sys" e2e run_ms_p99)" ;;
                esac
                echo "| $label | $(g e2e "$sys" e2e wall_s) | $(g e2e "$sys" e2e jobs_per_s) | $([ "$sys" = ringq ] || ratio "$rj" "$(g e2e "$sys" e2e jobs_per_s)") | $(g e2e "$sys" e2e submit_per_s) | $qw | $rt |"
        done
        echo
        echo "One process per job, submit rate: ringq $(g e2e ringq-per-process e2e submit_per_s)/s, tsp $(g e2e tsp e2e submit_per_s)/s (ratio $(ratio "$(g e2e ringq-per-process e2e submit_per_s)" "$(g e2e tsp e2e submit_per_s)")); with durability=normal, which like tsp fsyncs nothing, ringq $(g e2e ringq-normal-per-process e2e submit_per_s)/s (ratio $(ratio "$(g e2e ringq-normal-per-process e2e submit_per_s)" "$(g e2e tsp e2e submit_per_s)"))."
        echo
        echo "### What ringq spends on a job (figures that do not follow the machine's spawn speed)"
        echo
        echo "| | durability=full | durability=normal |"
        echo "|---|---:|---:|"
        echo "| ringqd CPU per job, us (all its threads) | $(g e2e ringq e2e daemon_cpu_us_per_job) | $(g e2e ringq-normal e2e daemon_cpu_us_per_job) |"
        for st in $PATH_STEPS; do
                echo "| $st p50 / p99 ms | $(g e2e ringq e2e job_path_ms_${st}_p50) / $(g e2e ringq e2e job_path_ms_${st}_p99) | $(g e2e ringq-normal e2e job_path_ms_${st}_p50) / $(g e2e ringq-normal e2e job_path_ms_${st}_p99) |"
        done
        echo
        echo "## One job on an idle ringqd, submit -> wait answer ($ONE_JOBS jobs, median of $RUNS; ringq-bench one)"
        echo
        echo "| job p50 ms | job p99 ms | bare spawn p50 ms (floor) | spawn p99 ms | fsync p50 ms (disk floor) | submit answered (fsync'd commit) p50 ms | ringq adds (p50) ms | job - spawn - fsync floor ms | job - spawn - submit answer ms (below 0: the job ran while its submit was made durable) | ringqd CPU per job us |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        echo "| $(g one ringq one job_ms_p50) | $(g one ringq one job_ms_p99) | $(g one ringq one spawn_ms_p50) | $(g one ringq one spawn_ms_p99) | $(g one ringq one fsync_ms_p50) | $(g one ringq one submit_ms_p50) | $(g one ringq one added_ms_p50) | $(g one ringq one added_beyond_fsync_ms_p50) | $(g one ringq one added_beyond_submit_ms_p50) | $(g one ringq one daemon_cpu_us_per_job) |"
        echo
        echo -n "Its steps, p50 ms:"
        for st in $PATH_STEPS; do echo -n " $st $(g one ringq one job_path_ms_${st}_p50);"; done
        echo
        echo
        echo "## Open-loop sweep at $SWEEP_SHAPE ($T_SWEEP per point, median of $RUNS; sweep.csv, sweep.png)"
        echo
        echo "| system | x capacity | offered/s | accepted/s | p50 ms | p99 ms | unsent |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $7, $9 }' "$SWEEP_CSV"
        echo
        echo "## ringqd overload: high_water 10000, 2x capacity for $T_OVER (median of $RUNS)"
        echo
        echo "| offered/s | accepted/s | rejected/s | accept p99 ms | reject p50 ms | reject p99 ms | RSS start -> end KiB |"
        echo "|---:|---:|---:|---:|---:|---:|---|"
        echo "| $(g overload ringq-hw 2x offered_per_s) | $(g overload ringq-hw 2x accepted_per_s) | $(g overload ringq-hw 2x rejected_per_s) | $(g overload ringq-hw 2x latency_ms_p99) | $(g overload ringq-hw 2x reject_latency_ms_p50) | $(g overload ringq-hw 2x reject_latency_ms_p99) | $(g overload ringq-hw 2x daemon_rss_start_kb) -> $(g overload ringq-hw 2x daemon_rss_end_kb) |"
        echo
        echo "Pings offered at the same rate: p50 $(g overload ringq-ping 2x latency_ms_p50) ms, p99 $(g overload ringq-ping 2x latency_ms_p99) ms; reject p99 / ping p99 = $(ratio "$(g overload ringq-hw 2x reject_latency_ms_p99)" "$(g overload ringq-ping 2x latency_ms_p99)") (of the medians); run by run: $(overload_pairs)."
        echo
        echo "Machine:"
        echo
        sed 's/^/    /' "$OUT/machine.txt"
} >"$OUT/table.md"

"$HERE/plot.sh" "$OUT" || echo "compare.sh: plot failed (is gnuplot installed?)" >&2
cat "$OUT/table.md"
echo
echo "raw runs: $RUNS_TXT; medians: $CSV, $OUT/results.json; plot: $OUT/sweep.png"
