"""A job that can start as it is submitted (a slot is free, nothing queued
comes first, its queue takes another) is readied in a slot while its
submit commits: the child is made and waits at its barrier, and execs only
once the commit is back. So a submit that does not commit never runs its
job, a crash before the commit runs nothing and leaves nothing, and a stop
or a re-exec that begins meanwhile leaves the job queued, to run once after
it.

Each test holds the database's write lock from another connection, so the
submit's commit waits (busy_timeout) while its job sits at the barrier."""
import os
import re
import shutil
import signal
import sqlite3
import tempfile
import time
import unittest

from harness import SLOW, DaemonTest, alive, proc_stats, wait_for


class StartAtSubmit(DaemonTest):
    daemon_kwargs = {"workers": 1, "args": ["--busy-timeout", "60s"]}

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="ringq-submit-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.marker = os.path.join(self.dir, "ran")

    def argv(self):
        return ["sh", "-c", 'echo ran >> "$1"', "job", self.marker]

    def runs(self):
        try:
            with open(self.marker) as f:
                return len(f.read().splitlines())
        except FileNotFoundError:
            return 0

    def lock(self):
        db = sqlite3.connect(os.path.join(self.d.state, "queue.db"), isolation_level=None, timeout=10)
        db.execute("BEGIN IMMEDIATE")
        self.addCleanup(db.close)
        return db

    def submit_at_the_barrier(self):
        """Submit the job while the database is locked: returns the lock,
        the client whose answer is pending and the child at the barrier."""
        self.d.wait_job(self.d.submit(["true"]))  # the database exists, the slot is free again
        lock = self.lock()
        c = self.d.client()
        self.addCleanup(c.close)
        c.send({"op": "submit", "argv": self.argv()})
        wait_for(lambda: self.d.stats()["running"] == 1, what="a slot taking the job at its submit")
        kids = wait_for(lambda: [pid for pid, state, ppid, _, _ in proc_stats()
                                 if ppid == self.d.pid() and state not in ("Z", "X")], what="the job's child")
        self.assertEqual(len(kids), 1)
        return lock, c, kids[0]

    def test_the_job_waits_at_its_barrier_for_its_commit(self):
        lock, c, child = self.submit_at_the_barrier()
        time.sleep(0.5 * SLOW)
        self.assertEqual(self.runs(), 0, "the job ran before its submit was committed")
        self.assertTrue(alive(child))
        self.assertTrue(self.d.call({"op": "ping"})["ok"])
        lock.execute("ROLLBACK")
        r = c.recv()
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.d.wait_job(r["id"])["state"], "succeeded")
        self.assertEqual(self.runs(), 1)
        path = self.d.stats()["job_path_ms"]["submit_commit"]
        self.assertEqual(path["samples"], 2)
        self.assertGreaterEqual(path["max"], 500)

    def test_a_refused_submit_never_runs_its_job(self):
        self.d.stop()
        self.d.args = ["--busy-timeout", "300ms"]
        self.d.start()
        lock, c, child = self.submit_at_the_barrier()
        r = c.recv()
        self.assertEqual(r["error"], "storage_error", r)
        wait_for(lambda: not alive(child), what="the child ended at its barrier")
        wait_for(lambda: self.d.stats()["running"] == 0, what="the slot free again")
        lock.execute("ROLLBACK")
        time.sleep(0.3 * SLOW)
        self.assertEqual(self.runs(), 0, "a job whose submit failed ran")
        # The slot serves the next job, with an id of its own.
        jid = self.d.submit(self.argv())
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        self.assertEqual(self.runs(), 1)
        self.assertEqual(self.d.db().execute("select count(*) from jobs").fetchone(), (2,))

    def test_a_crash_before_the_commit_runs_nothing(self):
        lock, c, child = self.submit_at_the_barrier()
        self.d.kill9()
        # Its parent gone, the child dies at the barrier (and never execs).
        wait_for(lambda: not alive(child), what="the child gone with ringqd")
        self.assertIsNone(c.recv(), "an answer for a submit that was never committed")
        lock.execute("ROLLBACK")
        lock.close()
        self.d.start()
        self.assertEqual(self.d.db().execute("select count(*) from jobs").fetchone(), (1,))
        self.assertEqual(self.runs(), 0)
        jid = self.d.submit(self.argv())
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        self.assertEqual(self.runs(), 1)

    def test_a_stop_meanwhile_leaves_the_job_queued(self):
        lock, c, child = self.submit_at_the_barrier()
        self.d.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: ": draining: no new jobs" in self.d.logtext(), what="ringqd draining")
        lock.execute("ROLLBACK")
        # The submit was committed: it is answered, but the job, at its
        # barrier still, does not start while ringqd stops.
        r = c.recv()
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.d.stop(), 0)
        self.assertFalse(alive(child))
        self.assertEqual(self.runs(), 0)
        self.assertEqual(self.d.db().execute("select state, attempts from jobs where id = ?", (r["id"],)).fetchone(),
                         ("queued", 0))
        self.d.start()
        self.assertEqual(self.d.wait_job(r["id"])["state"], "succeeded")
        self.assertEqual(self.runs(), 1)

    def test_a_reexec_meanwhile_runs_the_job_once_after_it(self):
        lock, c, child = self.submit_at_the_barrier()
        os.kill(self.d.pid(), signal.SIGUSR2)
        wait_for(lambda: "re-executing" in self.d.logtext(), what="the re-exec begun")
        lock.execute("ROLLBACK")
        # Committed while the re-exec waited for it: answered, and the job,
        # at its barrier still, is left queued for the new process.
        r = c.recv()
        self.assertTrue(r["ok"], r)
        wait_for(lambda: self.d.stats()["reexecs"] == 1, timeout=30, what="the new process")
        self.assertFalse(alive(child))
        self.assertEqual(self.d.wait_job(r["id"])["state"], "succeeded")
        self.assertEqual(self.runs(), 1)
        self.assertEqual(len(re.findall(r"job %d started" % r["id"], self.d.logtext())), 1)


class NotAtSubmit(DaemonTest):
    daemon_kwargs = {"workers": 1}

    def test_a_paused_queue_takes_nothing_at_submit(self):
        self.assertTrue(self.d.call({"op": "pause", "queue": "q"})["ok"])
        jid = self.d.submit(["true"], queue="q")
        time.sleep(0.3 * SLOW)
        s = self.d.stats()
        self.assertEqual((s["running"], s["job_path_ms"]["submit_commit"]["samples"]), (0, 0))
        self.assertEqual(self.d.job(jid)["state"], "queued")
        self.assertTrue(self.d.call({"op": "resume", "queue": "q"})["ok"])
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")

    def test_a_big_job_goes_through_the_queue(self):
        # Readied at its submit, a big job would hold its request, its row
        # and its slot's copies at once: it waits for its commit instead.
        jid = self.d.submit(["sh", "-c", 'test ${#BIG} -eq 20000'], env={"BIG": "v" * 20000})
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        self.assertEqual(self.d.stats()["job_path_ms"]["submit_commit"]["samples"], 0)
        jid = self.d.submit(["sh", "-c", 'test ${#SMALL} -eq 2000'], env={"SMALL": "v" * 2000})
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        self.assertEqual(self.d.stats()["job_path_ms"]["submit_commit"]["samples"], 1)

    def test_a_job_with_a_key_goes_through_the_queue(self):
        # A key may make the submit a duplicate of a job that exists:
        # only the commit knows, so such a job is not readied before it.
        first = self.d.submit(["true"], key="k")
        self.d.wait_job(first)
        self.assertEqual(self.d.call({"op": "submit", "argv": ["true"], "key": "k"}),
                         {"ok": True, "id": first, "duplicate": True})
        self.assertEqual(self.d.stats()["job_path_ms"]["submit_commit"]["samples"], 0)
        # Ids given to submits that made no job are never shown, and the
        # next job's id is above every id given before.
        second = self.d.submit(["true"])
        self.assertGreater(second, first)
        self.assertEqual(self.d.wait_job(second)["state"], "succeeded")
        self.assertEqual(self.d.stats()["job_path_ms"]["submit_commit"]["samples"], 1)


if __name__ == "__main__":
    unittest.main()
