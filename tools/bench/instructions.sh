#!/usr/bin/env bash
# What ringqd executes for one durable submit, counted in instructions: a
# figure that does not follow the machine's speed or its noise, to set
# one version of ringqd against another.
#
#   tools/bench/instructions.sh [-n N] [-c CONNS] [-d DEPTH]
#   tools/bench/instructions.sh --jobs [-n N]
#
# Runs ringqd under valgrind's callgrind twice, each time in a fresh
# state dir: once for 1 submit, once for N (default 20000) pipelined
# submits of ringq-bench (CONNS x DEPTH, default 8x16), each stopped with
# SIGTERM. The difference of the two totals (every thread: the loop and
# the store) over N - 1 is printed as instructions_per_submit, with both
# totals. Under callgrind ringqd runs some 50 times slower, so its group
# commits are smaller than on a machine at full speed: compare versions
# with the same N, CONNS and DEPTH.
#
# With --jobs, what ringqd executes for one job submitted as a shell loop
# submits it: N (default 300) `ringq submit -- /bin/true` processes one
# after another, each job run on one of 2 slots and waited for, with
# durability=normal (the fsync is the disk's work, not ringqd's). Each
# carries the caller's environment, as ringq does: its size is printed
# (env_bytes), since the request's parse grows with it.
#
# Environment: RINGQ_BUILD (default <repo>/build) holds ringqd and
# ringq-bench. Needs valgrind.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${RINGQ_BUILD:-$HERE/../../build}
N=
CONNS=8
DEPTH=16
JOBS=0
while [ $# -gt 0 ]; do
        case "$1" in
        --jobs) JOBS=1 ;;
        -n) N=$2; shift ;;
        -c) CONNS=$2; shift ;;
        -d) DEPTH=$2; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "instructions.sh: unknown argument $1" >&2; exit 64 ;;
        esac
        shift
done
[ -n "$N" ] || N=$([ "$JOBS" = 1 ] && echo 300 || echo 20000)
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is needed" >&2; exit 69; }
[ "$N" -ge 2 ] 2>/dev/null || { echo "instructions.sh: -n must be 2 or more" >&2; exit 64; }

WORK=$(mktemp -d /tmp/ringq-instructions.XXXXXX)
PID=
cleanup() {
        [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
        rm -rf "$WORK"
}
trap cleanup EXIT

# count N: total instructions ringqd executed for N submits.
count() {
        local n=$1 dir=$WORK/$1 i
        mkdir "$dir"
        local dur=full workers=()
        [ "$JOBS" = 1 ] && dur=normal workers=(--workers 2)
        valgrind --tool=callgrind --callgrind-out-file="$dir/out" "$BUILD/ringqd" --state-dir "$dir/state" \
                --socket "$dir/sock" --config /dev/null --durability "$dur" --high-water $((n + 1000)) \
                "${workers[@]}" >"$dir/log" 2>&1 &
        PID=$!
        for ((i = 0; i < 600; i++)); do
                [ -S "$dir/sock" ] && break
                kill -0 "$PID" 2>/dev/null || { cat "$dir/log" >&2; exit 70; }
                sleep 0.1
        done
        if [ "$JOBS" = 1 ]; then
                # Each submit bounded, and each failure stops the count
                # (a for loop's status is only its last command's).
                for ((i = 0; i < n; i++)); do
                        timeout 60 "$BUILD/ringq" -s "$dir/sock" submit -- /bin/true ||
                                { echo "instructions.sh: submit $i failed" >&2; exit 70; }
                done >"$dir/ids"
                xargs "$BUILD/ringq" -s "$dir/sock" wait --timeout 600s <"$dir/ids" >/dev/null ||
                        { echo "instructions.sh: not all $n jobs succeeded" >&2; exit 70; }
        else
                "$BUILD/ringq-bench" submit -s "$dir/sock" -c "$CONNS" -d "$DEPTH" -n "$n" -t 600s \
                        | tr ' ' '\n' | grep -qx "accepted=$n" || { echo "instructions.sh: not all $n accepted" >&2; exit 70; }
        fi
        kill -TERM "$PID"
        wait "$PID" || true
        PID=
        awk '/^(summary|totals):/ { print $2; exit }' "$dir/out"
}

one=$(count 1)
many=$(count "$N")
if [ "$JOBS" = 1 ]; then
        echo "jobs=$N env_bytes=$(env | wc -c) instructions_1=$one instructions_n=$many" \
                "instructions_per_job=$(((many - one) / (N - 1)))"
else
        echo "submits=$N shape=${CONNS}x$DEPTH instructions_1=$one instructions_n=$many" \
                "instructions_per_submit=$(((many - one) / (N - 1)))"
fi
