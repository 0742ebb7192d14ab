#!/usr/bin/env python3
"""Crash consistency: N cycles of start ringqd, submit from several
clients while jobs run, kill -9 at a random moment, restart and check.

Every third submit of a client runs after its previous job (after), so
chains of dependencies cross the crashes too.

After every cycle: PRAGMA integrity_check is ok; every id ever
acknowledged is in the table; no job is both finished and running; no
job started before every job it runs after had succeeded; no process of
the dead daemon's jobs survives: of those the database says were
running, nor of those its launch records say it had let exec before
their starts were committed. At the end every job ends, and each one
whose dependency failed or was canceled is canceled for it.

  crashloop.py [--cycles N] [--clients K] [--seed S]     (RINGQD=path)
Prints one line: cycles=.. acked=.. lost=.. interrupted=.. running_at_crash=..
start_not_committed=.. ok
"""
import argparse
import os
import random
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, procs_in_session, wait_for  # noqa: E402

# Jobs of every kind a crash can catch: quick ones, ones that run a while,
# ones that leave children in their process group, ones with retries.
JOBS = [
    (["true"], 1),
    (["true"], 1),
    (["true"], 2),
    (["true"], 1),
    (["sh", "-c", "sleep 0.2"], 2),
    (["sh", "-c", "sleep 0.3 & sleep 0.3; wait"], 1),
    (["sh", "-c", "exit 3"], 2),
]
PER_CLIENT = 25  # submits per client per cycle, so the backlog stays finite


def rows(d, sql):
    db = d.db(timeout=30)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def drive(d, acked, stop, rnd):
    c = d.client()
    prev = None
    try:
        for n in range(PER_CLIENT):
            if stop.is_set():
                break
            time.sleep(rnd.uniform(0, 0.02))
            argv, attempts = rnd.choice(JOBS)
            req = {"op": "submit", "argv": argv, "max_attempts": attempts, "backoff_ms": 50}
            if prev and n % 3 == 2:
                req["after"] = [prev]
            r = c.call(req)
            if r is None:
                return
            if r.get("ok"):
                acked.append(r["id"])
                prev = r["id"]
    except (OSError, EOFError, ValueError):
        return
    finally:
        c.close()


def check(d, acked):
    """The invariants after a restart; returns (interrupted, leftovers)."""
    (ok,) = rows(d, "PRAGMA integrity_check")[0]
    assert ok == "ok", "integrity_check: " + ok
    have = set(r[0] for r in rows(d, "SELECT id FROM jobs"))
    lost = set(acked) - have
    assert not lost, "acknowledged jobs lost: %s" % sorted(lost)[:20]
    bad = rows(d, "SELECT id, state, finished_at, pid FROM jobs WHERE"
                  " (state IN ('succeeded','failed','canceled') AND (finished_at IS NULL OR pid IS NOT NULL))"
                  " OR (state IN ('queued','running') AND finished_at IS NOT NULL)")
    assert not bad, "jobs both finished and not: %s" % bad[:10]
    early = rows(d, "SELECT j.id, a.id, a.state FROM job_deps x JOIN jobs j ON j.id = x.job_id"
                    " JOIN jobs a ON a.id = x.after_id WHERE j.started_at IS NOT NULL"
                    " AND (a.state != 'succeeded' OR a.finished_at > j.started_at)")
    assert not early, "jobs started before what they run after succeeded: %s" % early[:10]
    return rows(d, "SELECT count(*) FROM jobs WHERE reason LIKE 'interrupted%'")[0][0]


def check_chains(d):
    """Once every job has ended: a job whose dependency failed or was
    canceled is canceled for it."""
    bad = rows(d, "SELECT j.id, j.state, j.reason, a.id, a.state FROM job_deps x JOIN jobs j ON j.id = x.job_id"
                  " JOIN jobs a ON a.id = x.after_id WHERE a.state IN ('failed', 'canceled')"
                  " AND (j.state != 'canceled' OR j.reason NOT LIKE 'dependency %')")
    assert not bad, "dependents of failed jobs not canceled: %s" % bad[:10]
    return rows(d, "SELECT count(*) FROM job_deps")[0][0]


def launch_records(d):
    """(job id, pid) of each launch record the dead ringqd left: jobs it
    let exec whose start the database may not hold (daemon/launches.h:
    a 64-byte header, then 32-byte records: id, queued_seq, started_at,
    pid)."""
    try:
        with open(os.path.join(d.state, "launches"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for off in range(64, len(data) - 31, 32):
        jid, _seq, _at, pid, _ = struct.unpack_from("<qqqii", data, off)
        if jid > 0 and pid > 0:
            out.append((jid, pid))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time())
    rnd = random.Random(seed)
    d = Daemon(workers=args.workers)
    acked, leftovers, interrupted, chained, unrecorded = [], 0, 0, 0, 0
    try:
        d.start()
        for cycle in range(args.cycles):
            stop = threading.Event()
            threads = [threading.Thread(target=drive, args=(d, acked, stop, random.Random(rnd.random())))
                       for _ in range(args.clients)]
            for t in threads:
                t.start()
            time.sleep(rnd.uniform(0.05, 1.0))
            d.kill9()
            # What the crash left running, read before recovery changes it.
            running = rows(d, "SELECT id, pid FROM jobs WHERE state = 'running' AND pid IS NOT NULL")
            # And those whose start had not reached the database yet.
            started = set(running)
            late = [r for r in launch_records(d) if r not in started]
            unrecorded += len(late)
            running += late
            # At once, while the dead one's socket may still take a
            # connect(). The clients' connections died with it: they end
            # on their own and are joined after.
            d.start()
            stop.set()
            for t in threads:
                t.join(30)
            for jid, pid in running:
                left = procs_in_session(pid)
                assert not left, "cycle %d: job %d's processes %s survived" % (cycle, jid, left)
            leftovers += len(running)
            interrupted = check(d, acked)
        # Every job ends: nothing stays queued or running for ever.
        # The backlog of all cycles runs now: allow for it.
        wait_for(lambda: rows(d, "SELECT count(*) FROM jobs WHERE state IN ('queued','running')")[0][0] == 0,
                 timeout=60 + 0.1 * len(acked), what="every job to end")
        check(d, acked)
        chained = check_chains(d)
        assert d.stop() == 0
    except AssertionError as e:
        print("crashloop: seed=%d: %s\n--- ringqd log ---\n%s" % (seed, e, d.logtext()[-3000:]), file=sys.stderr)
        d.cleanup()
        return 1
    d.cleanup()
    print("cycles=%d acked=%d chained=%d lost=0 interrupted=%d running_at_crash=%d start_not_committed=%d seed=%d ok" %
          (args.cycles, len(acked), chained, interrupted, leftovers, unrecorded, seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
