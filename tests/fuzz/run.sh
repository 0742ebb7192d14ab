#!/bin/bash
# Fuzz ringqd's parsers and request path with libFuzzer.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# Builds build-fuzz/ if needed (CC=clang cmake -DRINGQ_FUZZ=ON), then runs
# each target (default: proto config dispatch) for SECONDS (default 30)
# on a copy of tests/fuzz/corpus/<target>/ -- the repo's corpus is never
# written to -- with the dictionary proto.dict or config.dict, and prints
# one line per target:
#   target=<name> execs=<n> crashes=<n>
# crashes counts crash, leak, timeout and oom reports. Exits 1 if any
# target crashed or leaked, 2 on a usage or build error.
#
# Environment:
#   RINGQ_FUZZ_BUILD_DIR  build dir (default <repo>/build-fuzz)
#   RINGQ_FUZZ_NO_BUILD=1 do not configure or build (ctest sets it)
#   RINGQ_FUZZ_WORK       work dir to use and keep (default: a temp dir,
#                         removed unless something failed)
#   RINGQ_FUZZ_ARGS       extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${RINGQ_FUZZ_BUILD_DIR:-$repo/build-fuzz}
all_targets="proto config dispatch"

secs=30
if [ $# -gt 0 ]; then
        case $1 in
        ''|*[!0-9]*) ;;
        *) secs=$1; shift ;;
        esac
fi
targets=${*:-$all_targets}
for t in $targets; do
        case " $all_targets " in
        *" $t "*) ;;
        *) echo "run.sh: unknown target '$t' (known: $all_targets)" >&2; exit 2 ;;
        esac
done

if [ "${RINGQ_FUZZ_NO_BUILD:-0}" != 1 ]; then
        blog=$(mktemp "${TMPDIR:-/tmp}/ringq-fuzz-build.XXXXXX") || exit 2
        if [ ! -f "$build/CMakeCache.txt" ]; then
                CC=clang cmake -S "$repo" -B "$build" -DRINGQ_FUZZ=ON >"$blog" 2>&1 || {
                        cat "$blog" >&2
                        echo "run.sh: configure failed: CC=clang cmake -S $repo -B $build -DRINGQ_FUZZ=ON" >&2
                        rm -f "$blog"
                        exit 2
                }
        fi
        bt=""
        for t in $targets; do bt="$bt fuzz-$t"; done
        # shellcheck disable=SC2086
        cmake --build "$build" -j"$(nproc)" --target $bt >"$blog" 2>&1 || {
                cat "$blog" >&2
                echo "run.sh: build failed: cmake --build $build --target$bt" >&2
                rm -f "$blog"
                exit 2
        }
        rm -f "$blog"
fi

if [ -n "${RINGQ_FUZZ_WORK:-}" ]; then
        work=$RINGQ_FUZZ_WORK
        mkdir -p "$work" || exit 2
        keep=1
else
        work=$(mktemp -d "${TMPDIR:-/tmp}/ringq-fuzz.XXXXXX") || exit 2
        keep=0
fi
# fuzz-dispatch puts a SQLite state dir per input under $TMPDIR: a tmpfs
# is much faster than a disk.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        scratch=$(mktemp -d /dev/shm/ringq-fuzz.XXXXXX) || exit 2
else
        scratch=$work/scratch
        mkdir -p "$scratch"
fi

status=0
for t in $targets; do
        bin=$build/tests/fuzz/fuzz-$t
        d=$work/$t
        if [ ! -x "$bin" ]; then
                echo "run.sh: $bin is missing (build with RINGQ_FUZZ=ON)" >&2
                status=2
                continue
        fi
        rm -rf "$d"
        mkdir -p "$d/corpus" "$d/artifacts" "$scratch/$t"
        cp -R "$here/corpus/$t/." "$d/corpus/" 2>/dev/null
        case $t in
        config) dict=$here/config.dict ;;
        *) dict=$here/proto.dict ;;
        esac
        # shellcheck disable=SC2086
        (cd "$d" && TMPDIR=$scratch/$t exec "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
                -print_final_stats=1 -dict="$dict" -artifact_prefix="$d/artifacts/" ${RINGQ_FUZZ_ARGS:-} \
                "$d/corpus") >"$d/log" 2>&1
        rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log" | tail -n 1)
        [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$d/log" | tail -n 1)
        crashes=$(find "$d/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
                -o -name 'oom-*' \) | wc -l)
        # A failure without an artifact (a leak at exit, a failed start)
        # is a failure all the same.
        if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
                crashes=1
        fi
        echo "target=$t execs=${execs:-0} crashes=$crashes"
        if [ "$crashes" -ne 0 ]; then
                status=1
                echo "--- fuzz-$t failed (exit $rc); log: $d/log, inputs: $d/artifacts/" >&2
                grep -a -E -A40 '^(==[0-9]+==ERROR|fuzz-[a-z]+: |.*runtime error:|SUMMARY:)' "$d/log" | head -n 80 >&2
        fi
done

rm -rf "$scratch"
if [ "$status" -eq 0 ] && [ "$keep" -eq 0 ]; then
        rm -rf "$work"
else
        echo "run.sh: work dir kept: $work" >&2
fi
exit "$status"
