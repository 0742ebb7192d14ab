"""Power cuts on a model of a disk that keeps only what was fsynced
(powercut.py runs any number of cycles; the README reports a long run):
with durability=full nothing acknowledged is lost, with durability=normal
something is (else the model could not tell them apart), and while
fsync fails with EIO nothing is acknowledged and ringqd keeps serving. A
job that can start at once starts while its submit's fsync runs, and
its submit is answered only after it."""
import os
import select
import time
import unittest

import powercut
from harness import SLOW, VALGRIND, wait_for

SKIP = not powercut.LIB or VALGRIND or os.environ.get("RINGQ_SANITIZED")


@unittest.skipIf(SKIP, "needs the shim (RINGQ_POWERCUT_LIB), and no sanitizer or valgrind in front of it")
class PowerCuts(unittest.TestCase):
    def started(self):
        """A ringqd with durability=full on the modelled disk, running."""
        pc = powercut.PowerCut("full")
        self.addCleanup(pc.d.cleanup)
        pc.d.start()
        return pc, pc.d

    def test_full_loses_nothing_acknowledged(self):
        acked, lost = powercut.run(cycles=6, clients=3, durability="full", seed=11)
        self.assertGreater(acked, 50)
        self.assertEqual(lost, 0)
        # One client: its jobs mostly find a slot free and start before
        # their submit's fsync, which the answer still waits for.
        counters = {}
        acked, lost = powercut.run(cycles=4, clients=1, durability="full", seed=13, counters=counters)
        self.assertGreater(counters.get("early_submits", 0), 0)
        self.assertEqual(lost, 0)

    def test_normal_loses_what_was_not_synced(self):
        # Whether a cut finds unsynced commits depends on when it falls
        # (a checkpoint syncs everything before it): cut until one does.
        acked, lost = powercut.run(cycles=40, clients=3, durability="normal", seed=12, stop_at_loss=True)
        self.assertGreater(lost, 0, "40 cuts lost nothing without fsync: the model tests nothing")

    def test_one_fsync_on_a_jobs_path(self):
        # durability=full: the submit's commit is fsynced before its
        # answer; the job's start and end commit without one (the WAL is
        # synced after them, through the ring, which this model does not
        # count). So a job costs one fsync of its own, whatever the
        # batching.
        pc, d = self.started()
        d.wait_job(d.submit(["true"]))
        for _ in range(5):
            before = pc.syncs()
            jid = d.submit(["true"])
            self.assertEqual(pc.syncs(), before + 1, "the submit's commit is fsynced before its answer")
            self.assertEqual(d.wait_job(jid)["state"], "succeeded")
            self.assertEqual(pc.syncs(), before + 1, "a start or an end paid for an fsync of its own")
        self.assertGreaterEqual(d.stats()["counters"]["wal_syncs"], 5)

    def test_a_failing_fsync_acknowledges_nothing(self):
        pc, d = self.started()
        before = d.submit(["true"])
        self.assertEqual(d.wait_job(before)["state"], "succeeded")
        running = d.submit(["sh", "-c", "sleep 0.5"])
        wait_for(lambda: d.job(running)["state"] == "running", what="the job to start")
        open(pc.flag, "w").close()
        r = d.call({"op": "submit", "argv": ["true"]})
        self.assertEqual(r.get("error"), "storage_error", r)
        # A slot was free, so that job was committed to start at once,
        # before its fsync: the answer says it may run all the same.
        self.assertIn("could not be made durable", r.get("message", ""), r)
        # One that could not start at once fails at its commit.
        r = d.call({"op": "submit", "argv": ["true"], "delay_ms": 3600000})
        self.assertEqual(r.get("error"), "storage_error", r)
        self.assertIn("cannot answer now", r.get("message", ""), r)
        # It keeps serving: pings and reads.
        self.assertTrue(d.call({"op": "ping"})["ok"])
        self.assertEqual(d.job(before)["state"], "succeeded")
        self.assertGreaterEqual(d.stats()["counters"]["store_errors"], 1)
        # The job ends while the disk fails: its end waits for the disk,
        # and is not lost.
        wait_for(lambda: d.stats()["running"] == 0, what="the job to end")
        os.unlink(pc.flag)
        after = wait_for(lambda: (lambda r: r.get("ok") and r)(d.call({"op": "submit", "argv": ["true"]})),
                         timeout=10 * SLOW, what="submits to be acknowledged again")["id"]
        self.assertEqual(d.wait_job(running)["state"], "succeeded")
        self.assertEqual(d.wait_job(after)["state"], "succeeded")
        pc.cut()
        d.start()
        self.assertLessEqual({before, running, after}, pc.ids())
        self.assertEqual(d.job(running)["state"], "succeeded")

    def test_a_slow_disk_holds_only_the_submits_that_wait_for_it(self):
        # What the store thread buys, and costs a 1x1 stream two thread
        # hand-overs per submit: while an fsync takes 1.5 s, the loop
        # still answers everything that needs no fsync of its own.
        pc, d = self.started()
        done = d.submit(["true"])
        d.wait_job(done)
        stall = 3 * SLOW
        with open(pc.slow, "w") as f:
            f.write("%d" % (stall * 1000))
        self.addCleanup(lambda: os.path.exists(pc.slow) and os.unlink(pc.slow))
        c = d.client()
        self.addCleanup(c.close)
        t0 = time.monotonic()
        c.send({"op": "submit", "argv": ["true"], "delay_ms": 3600000})
        for _ in range(3):
            self.assertTrue(d.call({"op": "ping"})["ok"])
            self.assertEqual(d.job(done)["state"], "succeeded")
            r = d.call({"op": "submit", "cwd": "/"})
            self.assertEqual((r["ok"], r["error"]), (False, "bad_request"), r)
            self.assertIn("counters", d.stats())
        # All answered within the stall, not after it, and the submit
        # still waits for its fsync.
        self.assertLess(time.monotonic() - t0, stall / 2, "the others waited for the slow fsync")
        self.assertEqual(select.select([c.sock], [], [], 0)[0], [], "the submit was answered before its fsync")
        r = c.recv()
        self.assertTrue(r["ok"], r)
        self.assertGreaterEqual(time.monotonic() - t0, stall * 0.9)
        os.unlink(pc.slow)
        self.assertEqual(d.job(r["id"])["state"], "queued")

    def test_a_job_starts_while_its_submit_is_made_durable(self):
        pc, d = self.started()
        d.wait_job(d.submit(["true"]))
        early = d.stats()["counters"]["early_submits"]
        marker = os.path.join(d.root, "ran")
        with open(pc.slow, "w") as f:
            f.write("%d" % (1500 * SLOW))
        c = d.client()
        self.addCleanup(c.close)
        t0 = time.monotonic()
        c.send({"op": "submit", "argv": ["sh", "-c", "echo ran > " + marker]})
        wait_for(lambda: os.path.exists(marker), timeout=5 * SLOW, what="the job to run during its submit's fsync")
        # It ran, and its submit is not answered yet: that fsync still runs.
        self.assertEqual(select.select([c.sock], [], [], 0)[0], [], "answered before its fsync returned")
        r = c.recv()
        self.assertTrue(r["ok"], r)
        self.assertGreaterEqual(time.monotonic() - t0, 1.4 * SLOW)
        os.unlink(pc.slow)
        self.assertEqual(d.wait_job(r["id"])["state"], "succeeded")
        self.assertEqual(d.stats()["counters"]["early_submits"], early + 1)
        # And the answer came after the fsync that made it durable.
        pc.cut()
        d.start()
        self.assertIn(r["id"], pc.ids())


if __name__ == "__main__":
    unittest.main()
