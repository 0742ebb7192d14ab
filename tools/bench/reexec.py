#!/usr/bin/env python3
"""How long a re-exec holds ringqd: SIGUSR2 -> the new process answers.

    tools/bench/reexec.py [--jobs N] [--rounds R]

Starts a ringqd of its own (RINGQ_BUILD, default <repo>/build) in a
temporary directory with N slots, runs N `sleep` jobs, parks one client
with a wait on each, then re-executes it R times in a row and prints the
time from the signal to the first `stats` answered by the new process
(p50, min, max), and what the last one adopted. Nothing is timed in a
test; this is the figure the README quotes.
"""
import argparse
import os
import signal
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RINGQ_BUILD", os.path.join(REPO, "build"))
os.environ.setdefault("RINGQD", os.path.join(BUILD, "ringqd"))
os.environ.setdefault("RINGQ", os.path.join(BUILD, "ringq"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from harness import Daemon  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    d = Daemon(workers=a.jobs)
    d.start()
    try:
        jobs = [d.submit(["sleep", "600"]) for _ in range(a.jobs)]
        for j in jobs:
            d.wait_state(j, "running")
        waiter = d.client()
        for j in jobs:
            waiter.send({"op": "wait", "id": j})
        ms = []
        for n in range(1, a.rounds + 1):
            t0 = time.monotonic()
            os.kill(d.pid(), signal.SIGUSR2)
            while d.stats().get("reexecs") != n:
                if time.monotonic() - t0 > 60:
                    raise SystemExit("re-exec %d: no answer from a new process within 60 s" % n)
            ms.append((time.monotonic() - t0) * 1000)
        st = d.stats()
        assert st["pid"] == d.pid() and st["counters"]["reexec_failed"] == 0, st
        print("re-exec with %d running jobs and %d parked waits, %d rounds: p50 %.1f ms, min %.1f, max %.1f; "
              "adopted by the last: %d" % (a.jobs, a.jobs, a.rounds, statistics.median(ms), min(ms), max(ms),
                                          st["counters"]["adopted"]))
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
