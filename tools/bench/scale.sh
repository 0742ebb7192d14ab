#!/usr/bin/env bash
# ringqd at scale: RSS with N jobs queued, time to READY=1 when it restarts
# over them, and what an idle ringqd does for 10 s.
#
#   tools/bench/scale.sh [-n N] [--durability full|normal]
#
# Starts its own ringqd (temporary state dir, own socket, --workers 2,
# --high-water above N), fills it with N far-delayed jobs through
# ringq-bench submit (8 connections x depth 64), then:
#   rss_queued_kb     VmRSS with N queued
#   ready_ms          SIGTERM, restart, time from exec to READY=1 (read on
#                     a NOTIFY_SOCKET of our own), N jobs to recover
#   rss_restart_kb    VmRSS after that restart
#   idle_syscalls     syscalls of every ringqd thread over 10 s idle
#                     (strace -f -c; no watchdog asked for, no job due)
# then, with N *runnable* jobs (/bin/true) queued by USERS uids
# (numeric, no passwd entry needed; setpriv) against a backlog of SMALL:
#   starts_per_s_big / cpu_us_per_start_big     jobs started per second
#   starts_per_s_small / cpu_us_per_start_small and ringqd's CPU (user +
#                     system) per started job over DISPATCH_S seconds,
#                     with fair share (the default), from 5 s after the
#                     fill; the difference is what a million queued jobs
#                     cost dispatch. These runs keep their state in
#                     /dev/shm with durability=normal: on a disk, making a
#                     job's output files waits behind the WAL's fsync and
#                     that wait, not dispatch, would be measured
#   starts_per_s_queues / cpu_us_per_start_queues   the same with the N jobs
#                     spread over QUEUES queues, every other one capped at
#                     1 running job (queue.<name>.workers) and 100 paused
# and prints them as one key=value line. N defaults to 1000000.
#
# Environment: RINGQ_BUILD (default <repo>/build) holds ringqd and
# ringq-bench. Needs python3 (the notify listener) and strace.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${RINGQ_BUILD:-$HERE/../../build}
N=1000000
DUR=full
USERS=8
QUEUES=1000
SMALL=20000
DISPATCH_S=20
while [ $# -gt 0 ]; do
        case "$1" in
        -n) N=$2; shift ;;
        --durability) DUR=$2; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "scale.sh: unknown argument $1" >&2; exit 64 ;;
        esac
        shift
done
for t in python3 strace setpriv; do
        command -v $t >/dev/null || { echo "scale.sh: $t is needed" >&2; exit 69; }
done

WORK=$(mktemp -d /tmp/ringq-scale.XXXXXX)
SHM=/dev/shm/ringq-scale.$$
PID=
cleanup() {
        [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
        rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT
SOCK=$WORK/ringq.sock
ARGS=(--state-dir "$WORK/state" --socket "$SOCK" --config /dev/null --workers 2
        --durability "$DUR" --high-water $((N + 1000)))

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# start_ready: start ringqd with a NOTIFY_SOCKET of ours; sets PID and
# READY_MS (exec to READY=1). Bounded by 120 s.
start_ready() {
        python3 - "$WORK/notify.sock" "$BUILD/ringqd" "${ARGS[@]}" >"$WORK/start.out" <<'EOF'
import os, socket, subprocess, sys, time
path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(1)
env = dict(os.environ, NOTIFY_SOCKET=path)
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[2:], env=env, stdout=subprocess.DEVNULL,
                     stderr=open(os.path.dirname(path) + "/ringqd.log", "a"),
                     start_new_session=True)
while time.monotonic() - t0 < 120:
    if p.poll() is not None:
        sys.exit("ringqd exited with %d" % p.returncode)
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        continue
    if "READY=1" in msg.split("\n"):
        print(p.pid, int((time.monotonic() - t0) * 1000))
        sys.exit(0)
sys.exit("no READY=1 in 120 s")
EOF
        read -r PID READY_MS <"$WORK/start.out"
}

stop() {
        kill -TERM "$PID"
        for ((i = 0; i < 600; i++)); do
                kill -0 "$PID" 2>/dev/null || break
                sleep 0.1
        done
        PID=
}

start_ready
"$BUILD/ringq-bench" submit -s "$SOCK" -c 8 -d 64 -n "$N" -t 600s >"$WORK/fill.out"
accepted=$(tr ' ' '\n' <"$WORK/fill.out" | sed -n 's/^accepted=//p')
fill_rate=$(tr ' ' '\n' <"$WORK/fill.out" | sed -n 's/^accepted_per_s=//p')
[ "$accepted" = "$N" ] || { echo "scale.sh: only $accepted of $N accepted" >&2; cat "$WORK/fill.out" >&2; exit 70; }
rss_queued=$(rss "$PID")
stop

start_ready
rss_restart=$(rss "$PID")
sleep 1 # let start-up settle before counting idle syscalls
timeout -s INT 10 strace -f -c -p "$PID" -o "$WORK/idle.txt" >/dev/null 2>&1 || true
idle=$(awk '$NF == "total" { print $4 + 0 }' "$WORK/idle.txt")
stop

# Dispatch at scale: COUNT runnable jobs from USERS uids, then starts
# and ringqd CPU per start over DISPATCH_S seconds. The jobs run as
# those uids (ringqd runs as root), so the socket must be theirs to use.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
started() { "$BUILD/ringq" -s "$SOCK" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["started"])'; }
dispatch() {
        local count=$1 queues=${2:-0} per=$(( $1 / USERS )) pids=() s0 s1 c0 c1 hz conf=/dev/null spread=()
        local saved=("${ARGS[@]}")
        rm -rf "$SHM"
        if [ "$queues" -gt 0 ]; then
                conf=$WORK/queues.conf
                for ((q = 0; q < queues; q += 2)); do printf 'queue.q%05d.workers = 1\n' $q; done >"$conf"
                spread=(--queues "$queues")
        fi
        ARGS=(--state-dir "$SHM" --socket "$SOCK" --config "$conf" --workers 2 --durability normal
              --high-water $((N + 1000)))
        start_ready
        ARGS=("${saved[@]}")
        chmod 755 "$WORK"
        chmod 666 "$SOCK"
        for ((u = 0; u < USERS; u++)); do
                setpriv --reuid=$((60001 + u)) --regid=$((60001 + u)) --clear-groups -- \
                        "$BUILD/ringq-bench" submit -s "$SOCK" -c 1 -d 64 -n "$per" --delay 0 -t 600s \
                        "${spread[@]}" >"$WORK/fill-$u.out" 2>&1 &
                pids+=($!)
        done
        wait "${pids[@]}"
        for ((q = 1; q < 200 && queues > 0; q += 2)); do
                "$BUILD/ringq" -s "$SOCK" pause "$(printf 'q%05d' $q)" >/dev/null
        done
        # Past the fill's own after-effects (its WAL checkpoints) first.
        sleep 5
        hz=$(getconf CLK_TCK)
        s0=$(started) c0=$(cpu_ticks "$PID")
        sleep "$DISPATCH_S"
        s1=$(started) c1=$(cpu_ticks "$PID")
        stop
        rm -rf "$SHM"
        python3 -c "import sys; s, c, t, hz = (int(x) for x in sys.argv[1:]); print('%.1f %.1f' % (s / t, c / hz * 1e6 / max(s, 1)))" \
                $((s1 - s0)) $((c1 - c0)) "$DISPATCH_S" "$hz"
}
read -r big_rate big_cpu < <(dispatch "$N")
read -r small_rate small_cpu < <(dispatch "$SMALL")
read -r queues_rate queues_cpu < <(dispatch "$N" "$QUEUES")

echo "jobs=$N durability=$DUR fill_per_s=$fill_rate rss_queued_kb=$rss_queued ready_ms=$READY_MS" \
        "rss_restart_kb=$rss_restart idle_syscalls=${idle:-0} idle_window_s=10" \
        "users=$USERS starts_per_s_big=$big_rate cpu_us_per_start_big=$big_cpu" \
        "small=$SMALL starts_per_s_small=$small_rate cpu_us_per_start_small=$small_cpu" \
        "queues=$QUEUES starts_per_s_queues=$queues_rate cpu_us_per_start_queues=$queues_cpu"
