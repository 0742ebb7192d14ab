#!/usr/bin/env python3
"""Power cuts: N cycles of start ringqd on a model of a disk that keeps
only what was fsynced (tests/powercut/powercut.c, LD_PRELOADed), submit
from several clients while jobs run, then cut the power at a random
moment: kill -9, and every state file goes back to what its last fsync
left (a file never synced is gone). Restart and check: PRAGMA
integrity_check is ok, and with durability=full every id ever
acknowledged is in the table. With durability=normal acknowledged jobs
may be lost, and the run reports how many were (a model that never loses
anything there could not tell the two apart).

  powercut.py [--cycles N] [--clients K] [--durability full|normal] [--seed S]
  (RINGQD=path, RINGQ_POWERCUT_LIB=path of the shim)
Prints one line: cycles=.. acked=.. lost=.. durability=.. seed=.. ok
"""
import argparse
import os
import random
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon  # noqa: E402

LIB = os.environ.get("RINGQ_POWERCUT_LIB", "")
JOBS = [["true"], ["sh", "-c", "sleep 0.05"], ["sh", "-c", "exit 2"]]
PER_CLIENT = 40


class PowerCut:
    """A ringqd whose state dir lives on the modelled disk."""

    def __init__(self, durability, workers=2):
        self.d = Daemon(workers=workers, args=["--durability", durability])
        self.shadow = os.path.join(self.d.root, "shadow")
        self.flag = os.path.join(self.d.root, "fsync-fails")
        self.slow = os.path.join(self.d.root, "fsync-slow")
        self.log = os.path.join(self.d.root, "syncs")
        os.makedirs(self.shadow)
        os.makedirs(self.d.state)
        self.d.env.update({
            "LD_PRELOAD": LIB,
            "RINGQ_POWERCUT_ROOT": os.path.realpath(self.d.state),
            "RINGQ_POWERCUT_SHADOW": self.shadow,
            "RINGQ_POWERCUT_FAIL": self.flag,
            "RINGQ_POWERCUT_SLOW": self.slow,
            "RINGQ_POWERCUT_LOG": self.log,
        })

    def syncs(self, name="queue.db-wal"):
        """How many times ringqd has fsynced the state file name."""
        try:
            with open(self.log) as f:
                return sum(1 for line in f if line.strip() == name)
        except FileNotFoundError:
            return 0

    def cut(self):
        """Kill ringqd and put back what the disk kept: the state files
        as their last fsync left them, and none that was never synced.
        Output files are not promised to survive and are left as they are."""
        self.d.kill9()
        for name in os.listdir(self.d.state):
            path = os.path.join(self.d.state, name)
            if not os.path.isfile(path):
                continue
            kept = os.path.join(self.shadow, name)
            if os.path.exists(kept):
                shutil.copyfile(kept, path)
            else:
                os.unlink(path)

    def ids(self):
        db = self.d.db()
        try:
            (ok,) = db.execute("PRAGMA integrity_check").fetchone()
            assert ok == "ok", "integrity_check: " + ok
            return set(r[0] for r in db.execute("SELECT id FROM jobs"))
        finally:
            db.close()


def drive(d, acked, stop, rnd):
    try:
        c = d.client()
    except OSError:
        return
    try:
        for _ in range(PER_CLIENT):
            if stop.is_set():
                break
            time.sleep(rnd.uniform(0, 0.01))
            r = c.call({"op": "submit", "argv": rnd.choice(JOBS), "max_attempts": 2, "backoff_ms": 20})
            if r is None:
                return
            if r.get("ok"):
                acked.add(r["id"])
    except (OSError, EOFError, ValueError):
        return
    finally:
        c.close()


def run(cycles, clients, durability, seed, stop_at_loss=False, counters=None):
    """(acknowledged, lost); counters, if given, gets the sum of the
    early_submits counter of every ringqd the cuts ended."""
    rnd = random.Random(seed)
    pc = PowerCut(durability)
    acked, lost = set(), set()
    try:
        pc.d.start()
        for cycle in range(cycles):
            stop = threading.Event()
            threads = [threading.Thread(target=drive, args=(pc.d, acked, stop, random.Random(rnd.random())))
                       for _ in range(clients)]
            for t in threads:
                t.start()
            time.sleep(rnd.uniform(0.05, 0.6))
            if counters is not None:
                try:
                    early = pc.d.stats()["counters"]["early_submits"]
                    counters["early_submits"] = counters.get("early_submits", 0) + early
                except (OSError, EOFError, ValueError, KeyError, TypeError):
                    pass
            pc.cut()
            stop.set()
            for t in threads:
                t.join(30)
            pc.d.start()
            gone = acked - pc.ids()
            assert durability != "full" or not gone, "cycle %d: acknowledged jobs lost: %s" % (cycle, sorted(gone)[:20])
            lost |= gone
            acked -= gone  # what is gone cannot be lost again
            if stop_at_loss and lost:
                break
    finally:
        pc.d.cleanup()
    return len(acked) + len(lost), len(lost)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--durability", choices=("full", "normal"), default="full")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time())
    if not LIB:
        print("powercut: RINGQ_POWERCUT_LIB is not set", file=sys.stderr)
        return 2
    try:
        counters = {}
        acked, lost = run(args.cycles, args.clients, args.durability, seed, counters=counters)
    except AssertionError as e:
        print("powercut: seed=%d: %s" % (seed, e), file=sys.stderr)
        return 1
    print("cycles=%d acked=%d lost=%d durability=%s seed=%d early_submits=%d ok"
          % (args.cycles, acked, lost, args.durability, seed, counters.get("early_submits", 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
