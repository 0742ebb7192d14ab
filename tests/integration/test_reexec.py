"""Re-executing ringqd in place (SIGUSR2): running jobs are handed over
to the new process and go on.

- Jobs running across a re-exec: the pid of ringqd and of each job stay;
  output keeps flowing into each job's file without a gap or a repeat;
  a timeout fires on its original deadline; a job that exits during the
  hand-off is recorded once with its real exit code; the journal (here
  stderr) names each adopted job; stats count it.
- A client that connects while it happens is served by the new process.
- Many re-execs in a row while short jobs come and go: nothing lost,
  nothing run twice, no process left (RINGQ_REEXEC_LOOPS, default 5;
  the issue's long run is 50).
- kill -9 at random moments of a re-exec: recovery as after any crash.
- A re-exec that cannot exec (the binary is gone) is given up and ringqd
  goes on as before; one asked for while draining is refused.
"""
import os
import random
import re
import shutil
import signal
import sqlite3
import time
import unittest

from harness import RINGQD, SLOW, VALGRIND, Daemon, DaemonTest, procs_in_session, wait_for

# Under valgrind each exec starts a native ringqd, but the first start
# is slow: fewer rounds there, the same checks.
LOOPS = int(os.environ.get("RINGQ_REEXEC_LOOPS", "2" if VALGRIND else "5"))


def reexec(d, expect):
    """SIGUSR2, then wait until the new process says it is the expect-th."""
    os.kill(d.pid(), signal.SIGUSR2)
    return wait_for(lambda: (lambda s: s.get("reexecs") == expect and s)(d.stats()), timeout=30,
                    what="re-exec number %d" % expect)


def ended_lines(d, jid):
    return len(re.findall(r"job %d ended:" % jid, d.logtext()))


class Reexec(DaemonTest):
    daemon_kwargs = {"workers": 4}

    def test_jobs_go_on(self):
        d = self.d
        pid = d.pid()
        talker = d.submit(["sh", "-c", "for i in $(seq 1 60); do echo out $i; echo err $i >&2; sleep 0.05; done"])
        sleeper = d.submit(["sleep", "30"], timeout_ms=3000)
        exiter = d.submit(["sh", "-c", "sleep 1; exit 7"])
        quiet = d.submit(["sleep", "1.5"])
        for j in (talker, sleeper, exiter, quiet):
            d.wait_state(j, "running")
        started = {j: d.job(j) for j in (talker, sleeper, exiter, quiet)}
        time.sleep(0.3)

        st = reexec(d, 1)
        self.assertEqual(st["pid"], pid, "the pid stays")
        self.assertEqual(d.proc.poll(), None)
        self.assertEqual(st["counters"]["adopted"], 4, d.logtext())
        for j in (talker, sleeper, exiter, quiet):
            self.assertIn("job %d adopted across a re-exec" % j, d.logtext())
            now = d.job(j)
            self.assertEqual(now["pid"], started[j]["pid"], "job %d keeps its process" % j)

        t = d.wait_job(talker)
        self.assertEqual(t["state"], "succeeded", t)
        self.assertEqual(d.output(talker), "".join("out %d\n" % i for i in range(1, 61)))
        self.assertEqual(d.output(talker, "err"), "".join("err %d\n" % i for i in range(1, 61)))

        s = d.wait_job(sleeper)
        self.assertEqual((s["state"], s["reason"]), ("failed", "timeout"), s)
        # Its deadline is the one it had: 3 s after its start, not after
        # the re-exec.
        self.assertLess(s["finished_at"] - s["started_at"], 3000 + 1500 * SLOW, s)
        self.assertGreaterEqual(s["finished_at"] - s["started_at"], 3000, s)

        e = d.wait_job(exiter)
        self.assertEqual((e["state"], e["exit_code"], e["attempts"]), ("failed", 7, 1), e)
        q = d.wait_job(quiet)
        self.assertEqual(q["state"], "succeeded", q)
        for j in (talker, sleeper, exiter, quiet):
            self.assertEqual(ended_lines(d, j), 1, "job %d recorded once" % j)
        statuses = d.notify.statuses()
        self.assertTrue(any(x.startswith("reexecuting") for x in statuses), statuses)
        # New work is taken as before.
        n = d.submit(["true"])
        self.assertEqual(d.wait_job(n)["state"], "succeeded")

    def test_exit_during_handoff(self):
        """A job whose process ends while the slots are parked: the new
        process reaps it and records its real status, once."""
        d = self.d
        jobs = [d.submit(["sh", "-c", "sleep %.2f; exit %d" % ((0.2 + 0.05 * i) * SLOW, i)]) for i in range(1, 5)]
        for j in jobs:
            d.wait_state(j, "running")
        reexec(d, 1)
        for i, j in enumerate(jobs, 1):
            r = d.wait_job(j)
            self.assertEqual(r["exit_code"], i, r)
            self.assertEqual(ended_lines(d, j), 1, d.logtext())

    def test_client_during_reexec(self):
        d = self.d
        slow = d.submit(["sleep", "1"])
        d.wait_state(slow, "running")
        os.kill(d.pid(), signal.SIGUSR2)
        # Made while the old process settles or execs: the socket's
        # backlog holds it for the new one.
        c = d.client()
        r = c.call({"op": "submit", "argv": ["echo", "after"]})
        c.close()
        self.assertTrue(r["ok"], r)
        self.assertEqual(d.wait_job(r["id"])["state"], "succeeded")
        self.assertEqual(d.output(r["id"]), "after\n")
        self.assertEqual(d.stats()["reexecs"], 1)

    def test_clients_go_over(self):
        """Connections with waits parked go over to the new process as
        they are: each wait is answered there, in order, with its tag; a
        wait's timeout keeps its deadline; a request half sent before the
        re-exec and finished after is answered."""
        d = self.d
        j = d.submit(["sleep", "1.5"])
        d.wait_state(j, "running")
        c = d.client()
        c.send({"op": "wait", "id": j, "tag": "first"})
        c.send({"op": "wait", "id": j, "timeout_ms": 700, "tag": "short"})
        t = d.client()
        t.send({"op": "wait", "id": j, "timeout_ms": 500, "tag": "alone"})
        h = d.client()
        half = b'{"op":"status","id":%d,' % j
        h.send_raw(half)
        time.sleep(0.1)
        t0 = time.monotonic()
        reexec(d, 1)
        h.send_raw(b'"tag":"half"}\n')
        r = h.recv()
        self.assertEqual((r["ok"], r["tag"], r["job"]["id"]), (True, "half", j), r)
        r = t.recv()
        self.assertEqual((r["ok"], r["error"], r["tag"]), (False, "timeout", "alone"), r)
        self.assertLess(time.monotonic() - t0, 1.0 * SLOW, "the wait's deadline moved")
        r1, r2 = c.recv(), c.recv()
        self.assertEqual((r1["ok"], r1["tag"], r1["job"]["state"]), (True, "first", "succeeded"), r1)
        self.assertEqual((r2["ok"], r2["error"], r2["tag"]), (False, "timeout", "short"), r2)
        c.send({"op": "ping", "tag": "after"})
        self.assertEqual(c.recv()["tag"], "after")
        for x in (c, t, h):
            x.close()

    def test_many_reexecs(self):
        d = self.d
        fds = lambda: sorted(os.listdir("/proc/%d/fd" % d.pid()))
        # The idle count after a first re-exec: under valgrind the first
        # process is valgrind's, with descriptors of its own, and what it
        # execs runs natively.
        reexec(d, 1)
        idle_fds = fds()
        ids = []
        for n in range(2, LOOPS + 2):
            for _ in range(6):
                ids.append(d.submit(["sh", "-c", 'echo "$RINGQ_JOB_ID $RINGQ_ATTEMPT"; sleep 0.%d' %
                                     random.randint(0, 3)]))
            time.sleep(random.random() * 0.2)
            reexec(d, n)
        for j in ids:
            r = d.wait_job(j, timeout=60)
            self.assertEqual((r["state"], r["attempts"]), ("succeeded", 1), r)
            self.assertEqual(d.output(j), "%d 1\n" % j, "job %d ran once, whole" % j)
            self.assertEqual(ended_lines(d, j), 1)
        st = d.stats()
        self.assertEqual(st["counters"]["reexec_failed"], 0)
        # Nothing handed over stays open once its job is done (at most
        # the idle count: a client's connection may still have been
        # closing when that was taken).
        wait_for(lambda: len(fds()) <= len(idle_fds), what="the fd count back to %d: %s" % (len(idle_fds), fds()))
        for j in ids:
            self.assertEqual(procs_in_session(d.job(j)["pid"]), [], "job %d left nothing" % j)

    def test_refused_while_draining(self):
        d = self.d
        j = d.submit(["sleep", "1"])
        d.wait_state(j, "running")
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        os.kill(d.pid(), signal.SIGUSR2)
        self.assertEqual(d.proc.wait(30 * SLOW), 0)
        self.assertNotIn("re-exec: handing", d.logtext())
        self.assertEqual(d.db().execute("SELECT state FROM jobs WHERE id = ?", (j,)).fetchone()[0], "succeeded")


class ReexecConfig(unittest.TestCase):
    def test_fewer_workers(self):
        """`workers` is read again by the new process: with fewer than
        run, every adopted job goes on and nothing new starts until
        fewer run than the new count."""
        d = Daemon(workers=None, config="workers = 3\n")
        self.addCleanup(d.cleanup)
        d.start()
        running = [d.submit(["sleep", "1"]) for _ in range(3)]
        for j in running:
            d.wait_state(j, "running")
        later = d.submit(["true"])
        with open(os.path.join(d.root, "ringqd.conf"), "w") as f:
            f.write("workers = 1\n")
        st = reexec(d, 1)
        self.assertEqual(st["counters"]["adopted"], 3)
        ends = max(d.wait_job(j)["finished_at"] for j in running)
        r = d.wait_job(later)
        self.assertGreaterEqual(r["started_at"], ends, "a new job started while more than `workers` ran")
        self.assertEqual(r["state"], "succeeded")


class ReexecTimeout(unittest.TestCase):
    def test_unsettled_is_given_up(self):
        """A submit held by a database lock keeps the store busy past
        reexec_timeout: the re-exec is given up, counted, and the submit
        is answered by the same process once the lock goes."""
        d = Daemon(workers=2, config="reexec_timeout = 300ms\nbusy_timeout = 10s\n")
        self.addCleanup(d.cleanup)
        d.start()
        lock = sqlite3.connect(os.path.join(d.state, "queue.db"), isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        c = d.client()
        c.send({"op": "submit", "argv": ["true"], "tag": "held"})
        time.sleep(0.1)
        os.kill(d.pid(), signal.SIGUSR2)
        wait_for(lambda: d.stats()["counters"]["reexec_failed"] == 1, timeout=10, what="the re-exec given up")
        self.assertIn("did not settle within reexec_timeout (300ms)", d.logtext())
        lock.execute("ROLLBACK")
        lock.close()
        r = c.recv()
        c.close()
        self.assertEqual((r["ok"], r["tag"]), (True, "held"), r)
        self.assertEqual(d.wait_job(r["id"])["state"], "succeeded")
        self.assertEqual(d.stats()["reexecs"], 0)


class ReexecFails(unittest.TestCase):
    def test_missing_binary_goes_on(self):
        """The binary it would run is gone: the re-exec is given up and
        the jobs, the socket and the store go on in the old process."""
        d = Daemon(workers=2)
        self.addCleanup(d.cleanup)
        exe = os.path.join(d.root, "ringqd-copy")
        shutil.copy2(RINGQD, exe)
        import harness
        saved = harness.RINGQD
        harness.RINGQD = exe
        try:
            d.start()
        finally:
            harness.RINGQD = saved
        j = d.submit(["sh", "-c", "echo one; sleep 1; echo two"])
        d.wait_state(j, "running")
        os.unlink(exe)
        os.kill(d.pid(), signal.SIGUSR2)
        wait_for(lambda: d.stats()["counters"]["reexec_failed"] == 1, timeout=30, what="the re-exec given up")
        self.assertEqual(d.stats()["reexecs"], 0)
        r = d.wait_job(j)
        self.assertEqual(r["state"], "succeeded", r)
        self.assertEqual(d.output(j), "one\ntwo\n")
        k = d.submit(["echo", "more"])
        self.assertEqual(d.wait_job(k)["state"], "succeeded")


class ReexecCrash(unittest.TestCase):
    def test_kill9_during_reexec(self):
        """kill -9 at a random moment of a re-exec (settling, parked,
        exec'ing, adopting): the next start recovers as after any crash."""
        d = Daemon(workers=3)
        self.addCleanup(d.cleanup)
        acked = []
        for cycle in range(max(2, LOOPS // 2)):
            d.start()
            for _ in range(4):
                acked.append(d.submit(["sh", "-c", "echo $RINGQ_JOB_ID; sleep 0.%d" % random.randint(1, 5)]))
            time.sleep(random.random() * 0.3)
            os.kill(d.pid(), signal.SIGUSR2)
            time.sleep(random.random() * 0.05)
            d.kill9()
        d.start()
        db = d.db()
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        have = {r[0] for r in db.execute("SELECT id FROM jobs")}
        self.assertEqual(set(acked) - have, set(), "acknowledged jobs lost")
        for j in acked:
            r = d.wait_job(j, timeout=60)
            self.assertIn(r["state"], ("succeeded", "failed"), r)
        for j in acked:
            pid = d.job(j)["pid"]
            if pid:
                self.assertEqual(procs_in_session(pid), [], "job %d left a process" % j)


if __name__ == "__main__":
    unittest.main()
