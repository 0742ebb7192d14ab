"""An interrupted run is not the job's fault: a job cut short by a stop
of ringqd (past shutdown_grace) or found running after a crash is queued
again with its attempt given back, up to max_interruptions per job; past
that an interruption spends an attempt as a failure does. The row counts
interruptions (schema 4), the reason and `ringq status` show them, the
run after one gets the same RINGQ_ATTEMPT and RINGQ_INTERRUPTIONS, and
`ringq stats` counts them. A database of schema 3 is upgraded in place."""
import json
import os
import shutil
import signal
import sqlite3
import tempfile
import time
import unittest

from harness import SLOW, DaemonTest, Daemon, alive, old_database, wait_for


# Adds each run's attempt and interruptions to $1/runs (its own file: a
# run's output replaces the run's before), then waits to be cut short,
# unless $1/done exists: then it succeeds at once.
RUN = 'echo "attempt=$RINGQ_ATTEMPT interruptions=${RINGQ_INTERRUPTIONS:-none}" >> "$1/runs"; ' \
      'if [ -e "$1/done" ]; then exit 0; fi; exec sleep 300'


class Runs:
    """A directory for one job of RUN."""

    def __init__(self, test):
        self.dir = tempfile.mkdtemp(prefix="ringq-intr-")
        test.addCleanup(shutil.rmtree, self.dir, True)

    def argv(self):
        return ["sh", "-c", RUN, "run", self.dir]

    def finish(self):
        with open(os.path.join(self.dir, "done"), "w"):
            pass

    def lines(self):
        try:
            with open(os.path.join(self.dir, "runs")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def wait_runs(self, n):
        """Until the n-th run has begun: "running" is committed before
        the exec, and a kill before the line would lose it."""
        wait_for(lambda: len(self.lines()) >= n, what="run %d of the job" % n)


def rows(d, sql):
    c = d.db()
    try:
        return c.execute(sql).fetchall()
    finally:
        c.close()


def status_fields(text):
    """`ringq status` as a dict of label -> value."""
    out = {}
    for line in text.splitlines():
        key, _, val = line.partition(":")
        out[key] = val.strip()
    return out


class Crash(DaemonTest):
    daemon_kwargs = {"workers": 1}

    def test_a_crash_requeues_without_spending_an_attempt(self):
        runs = Runs(self)
        jid = self.d.submit(runs.argv(), max_attempts=1)
        runs.wait_runs(1)
        # Queued behind it, ahead of it once it is requeued: the one slot
        # goes to this one at the restart, so the requeued row can be seen.
        blocker = self.d.submit(["sleep", "300"], priority=10)
        self.d.kill9()
        runs.finish()

        self.d.start()
        self.assertIn("recovered 1 interrupted job(s): 1 requeued (1 without spending an attempt), 0 failed",
                      self.d.logtext())
        self.d.wait_state(blocker, "running")
        job = self.d.job(jid)
        self.assertEqual((job["state"], job["attempts"], job["max_attempts"], job["interruptions"], job["reason"]),
                         ("queued", 0, 1, 1, "interrupted (1 of 3)"))
        st = status_fields(self.run_ok("status", str(jid)).stdout)
        self.assertEqual((st["state"], st["reason"], st["attempts"], st["interruptions"]),
                         ("queued", "interrupted (1 of 3)", "0 of 1", "1"))
        stats = self.d.stats()
        self.assertEqual(stats["counters"]["interrupted"], 1)
        prom = self.run_ok("stats", "--prometheus").stdout
        self.assertIn("\nringq_jobs_interrupted_total 1\n", prom)

        self.d.call({"op": "cancel", "id": blocker})
        job = self.d.wait_job(jid)
        self.assertEqual((job["state"], job["attempts"], job["interruptions"], job["reason"]),
                         ("succeeded", 1, 1, "exit 0"))
        # Both runs were attempt 1; the second knew of the interruption.
        self.assertEqual(runs.lines(), ["attempt=1 interruptions=none", "attempt=1 interruptions=1"])
        st = status_fields(self.run_ok("status", str(jid)).stdout)
        self.assertEqual(st["interruptions"], "1")

    def test_past_max_interruptions_an_interruption_spends_an_attempt(self):
        self.d.stop()
        self.d.workers = 2
        self.d.config = "max_interruptions = 1\n"
        self.d.start()
        runs, other = Runs(self), Runs(self)
        once = self.d.submit(other.argv(), max_attempts=1)
        twice = self.d.submit(runs.argv(), max_attempts=2)
        for r in (runs, other):
            r.wait_runs(1)
        # The first crash is within the bound: both run again, as the
        # same attempt.
        self.d.kill9()
        self.d.start()
        for jid in (once, twice):
            job = self.d.wait_state(jid, "running")
            self.assertEqual((job["attempts"], job["interruptions"]), (1, 1))
        for r in (runs, other):
            r.wait_runs(2)
        # The second is past it: the attempt counts. The job of one
        # attempt fails, saying so; the other runs its second attempt.
        self.d.kill9()
        self.d.start()
        self.assertIn("recovered 2 interrupted job(s): 1 requeued (0 without spending an attempt), 1 failed",
                      self.d.logtext())
        job = self.d.job(once)
        self.assertEqual((job["state"], job["attempts"], job["interruptions"], job["reason"]),
                         ("failed", 1, 2, "interrupted (2, over max_interruptions 1)"))
        job = self.d.wait_state(twice, "running")
        self.assertEqual((job["attempts"], job["interruptions"]), (2, 2))
        st = status_fields(self.run_ok("status", str(once)).stdout)
        self.assertEqual((st["reason"], st["interruptions"]), ("interrupted (2, over max_interruptions 1)", "2"))
        self.assertEqual(self.d.stats()["counters"]["interrupted"], 2)
        wait_for(lambda: len(runs.lines()) == 3, what="the third run's line")
        self.assertEqual(runs.lines(), ["attempt=1 interruptions=none", "attempt=1 interruptions=1",
                                        "attempt=2 interruptions=2"])
        self.d.call({"op": "cancel", "id": twice})

    def test_max_interruptions_0_spends_an_attempt_as_before(self):
        self.d.stop()
        self.d.args += ["--max-interruptions", "0"]
        self.d.start()
        runs = Runs(self)
        jid = self.d.submit(runs.argv(), max_attempts=1)
        runs.wait_runs(1)
        self.d.kill9()
        self.d.start()
        job = self.d.job(jid)
        self.assertEqual((job["state"], job["attempts"], job["interruptions"], job["reason"]),
                         ("failed", 1, 1, "interrupted"))


class CrashBeforeTheStartIsCommitted(DaemonTest):
    """A job execs as soon as its pid is in its slot's launch record, and
    its start is committed behind it. A crash in between must still find
    the job: its start is committed from the record at the next start,
    what is left of it is killed, and it is recovered as interrupted."""
    daemon_kwargs = {"workers": 1}

    def run_while_locked(self):
        """A job of RUN that comes due while another writer holds the
        database, so that nothing ringqd commits gets through: returns
        (runs, its id, the writer's connection in its transaction, the
        pid of a process of the job's own group that outlives its main
        one, which only the recorded pid leads recovery to)."""
        runs = Runs(self)
        left = os.path.join(runs.dir, "left")
        argv = ["sh", "-c", 'sleep 300 & echo $! > "$2"; ' + RUN, "run", runs.dir, left]
        jid = self.d.submit(argv, max_attempts=1, delay_ms=int(1500 * SLOW))
        lock = sqlite3.connect(os.path.join(self.d.state, "queue.db"), timeout=10)
        lock.isolation_level = None
        lock.execute("BEGIN IMMEDIATE")
        self.addCleanup(lock.close)
        runs.wait_runs(1)
        wait_for(lambda: os.path.exists(left) and os.path.getsize(left) > 0, what="the job's second process")
        with open(left) as f:
            return runs, jid, lock, int(f.read())

    def test_a_job_whose_start_was_not_committed_is_recovered(self):
        runs, jid, lock, stray = self.run_while_locked()
        # It runs, and the database does not know it yet.
        self.assertEqual(lock.execute("select state, attempts, pid from jobs where id = ?", (jid,)).fetchone(),
                         ("queued", 0, None))
        self.d.kill9()
        lock.execute("ROLLBACK")
        lock.close()
        runs.finish()

        self.d.start()
        log = self.d.logtext()
        self.assertIn("1 job(s) had started before a crash but their starts were not yet recorded", log)
        self.assertIn("recovered 1 interrupted job(s): 1 requeued (1 without spending an attempt), 0 failed", log)
        wait_for(lambda: not alive(stray), what="the job's second process killed")
        job = self.d.wait_job(jid)
        self.assertEqual((job["state"], job["attempts"], job["interruptions"], job["reason"]),
                         ("succeeded", 1, 1, "exit 0"))
        self.assertEqual(runs.lines(), ["attempt=1 interruptions=none", "attempt=1 interruptions=1"])

    def test_a_start_the_store_refuses_stops_the_job(self):
        # The row changes under the start that is on its way (here by
        # another writer, which nothing supported does; inside ringqd,
        # dispatch's cancel marks keep it from happening): the job, which
        # runs already, is killed, and the database keeps nothing of it.
        _, jid, lock, stray = self.run_while_locked()
        lock.execute("UPDATE jobs SET queued_seq = queued_seq + 1 WHERE id = ?", (jid,))
        lock.execute("COMMIT")
        wait_for(lambda: "job %d: cannot record its start; stopping it" % jid in self.d.logtext(),
                 timeout=10 * SLOW, what="the refused start")
        wait_for(lambda: not alive(stray), what="the job's processes killed")
        wait_for(lambda: self.d.stats()["running"] == 0, what="the slot free again")
        self.assertEqual(rows(self.d, "select state, attempts, queued_seq, pid, started_at, reason from jobs"
                                      " where id = %d" % jid),
                         [("queued", 0, 1, None, None, None)])
        self.assertNotIn("job %d started" % jid, self.d.logtext())


class Stop(DaemonTest):
    # kill_grace is the window for reading the counter while ringqd
    # stops: as long as any other wait under a slow wrapper.
    daemon_kwargs = {"workers": 2, "args": ["--shutdown-grace", "300ms", "--kill-grace", "%ds" % int(3 * SLOW)]}

    def test_a_stop_requeues_without_spending_an_attempt(self):
        runs = Runs(self)
        jid = self.d.submit(runs.argv(), max_attempts=1)
        # Ignores SIGTERM, so ringqd stays up for kill_grace after the
        # other one's end is recorded: time to read the counter.
        trapped = Runs(self)
        stubborn = self.d.submit(["sh", "-c", "trap '' TERM; : > \"$1/trapped\"; exec sleep 300", "stubborn",
                                  trapped.dir], max_attempts=1)
        runs.wait_runs(1)
        wait_for(lambda: os.path.exists(os.path.join(trapped.dir, "trapped")), what="SIGTERM ignored")
        c = self.d.client()
        self.addCleanup(c.close)
        os.kill(self.d.pid(), signal.SIGTERM)
        wait_for(lambda: c.call({"op": "stats"})["counters"]["interrupted"] == 1, timeout=2.5,
                 what="the first interruption counted")
        self.assertEqual(self.d.proc.wait(30 * SLOW), 0)
        self.d.log.close()
        self.d.notify.close()
        got = dict((r[0], r[1:]) for r in rows(self.d, "select id, state, attempts, interruptions, reason,"
                                                        " finished_at from jobs"))
        self.assertEqual(got[jid], ("queued", 0, 1, "interrupted (1 of 3)", None))
        self.assertEqual(got[stubborn], ("queued", 0, 1, "interrupted (1 of 3)", None))
        self.assertIn("job %d ended: requeued with its attempt given back, reason=\"interrupted (1 of 3)\"" % jid,
                      self.d.logtext())

        self.d.start()
        job = self.d.wait_state(jid, "running")
        self.assertEqual((job["attempts"], job["interruptions"]), (1, 1))
        wait_for(lambda: len(runs.lines()) == 2, what="the second run's line")
        self.assertEqual(runs.lines(), ["attempt=1 interruptions=none", "attempt=1 interruptions=1"])
        for j in (jid, stubborn):
            self.d.call({"op": "cancel", "id": j})


class SchemaUpgrade(unittest.TestCase):
    """tests/integration/data/queue-v3.sql is `sqlite3 queue.db .dump` of a
    database that ringqd made at schema 3, with a job it was running when
    it was killed."""

    def test_schema_3_database_is_upgraded_in_place(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        os.makedirs(os.path.join(d.state, "output"))
        db = os.path.join(d.state, "queue.db")
        c = old_database(db, 3)
        # Made by root: the jobs are this user's here.
        c.execute("UPDATE jobs SET owner_uid = ?, owner_gid = ?, owner_groups = ?",
                  (os.getuid(), os.getgid(), json.dumps([os.getgid()])))
        c.execute("UPDATE jobs SET run_at = ? WHERE id = 3", (int(time.time() * 1000) + 86400000,))
        # Jobs 5 to 9 were given and then pruned: AUTOINCREMENT's sequence
        # is the only trace of them, and schema 5 must keep it.
        c.execute("UPDATE sqlite_sequence SET seq = 9 WHERE name = 'jobs'")
        # The recorded pid must name nothing alive of the job: none has
        # RINGQ_JOB_ID=4, and the job's own process is long gone.
        c.commit()
        # The rows recovery leaves alone, every column, to see them copied.
        before = c.execute("SELECT * FROM jobs WHERE id < 4 ORDER BY id").fetchall()
        c.close()

        d.start()
        self.assertIn("schema upgraded from version 3 to 5", d.logtext())
        # systemd is told, before READY, that a start which copies the
        # jobs table may take longer than its timeout, and (for a re-exec)
        # that ringqd is alive.
        f = d.notify.fields()
        keys = [k for k, _ in f]
        self.assertIn(("EXTEND_TIMEOUT_USEC", "30000000"), f)
        self.assertLess(keys.index("WATCHDOG"), keys.index("READY"))
        self.assertLess(keys.index("EXTEND_TIMEOUT_USEC"), keys.index("READY"))
        self.assertTrue(d.notify.statuses()[0].startswith("upgrading the database schema from version 3 to 5 ("),
                        d.notify.statuses())
        ro = d.db()
        self.assertEqual(ro.execute("PRAGMA user_version").fetchone()[0], 5)
        self.assertEqual(ro.execute("SELECT id, interruptions FROM jobs WHERE id != 4 ORDER BY id").fetchall(),
                         [(1, 0), (2, 0), (3, 0)])
        # Schema 5: the table made again without AUTOINCREMENT, every row
        # and column copied, the indexes and the view made again.
        sql = ro.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
        self.assertNotIn("AUTOINCREMENT", sql)
        self.assertEqual([r[:len(before[0])] for r in ro.execute("SELECT * FROM jobs WHERE id < 4 ORDER BY id")],
                         before)
        self.assertEqual(sorted(r[0] for r in ro.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'jobs'")),
                         ["jobs", "jobs_finished", "jobs_id_floor_keep", "jobs_idem", "jobs_queue", "jobs_state"])
        self.assertEqual(ro.execute("SELECT id FROM jobs_id_floor").fetchall(), [(9,)])
        self.assertEqual(ro.execute("SELECT count(*) FROM sqlite_sequence").fetchone()[0], 0)
        self.assertEqual(ro.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        ro.close()
        # Running at the crash under schema 3: recovered with its attempt
        # given back, the first interruption it has.
        self.assertIn("recovered 1 interrupted job(s): 1 requeued (1 without spending an attempt), 0 failed",
                      d.logtext())
        job = d.wait_state(4, "running")
        # The view, made again over the new table (read once job 4 runs
        # again: recovery requeues it first).
        ro = d.db()
        self.assertEqual(ro.execute("SELECT * FROM queue_summary ORDER BY state").fetchall(),
                         [("default", "failed", 1), ("default", "queued", 1), ("default", "running", 1),
                          ("default", "succeeded", 1)])
        ro.close()
        self.assertEqual((job["attempts"], job["max_attempts"], job["interruptions"]), (1, 1, 1))
        self.assertEqual([d.job(i)["state"] for i in (1, 2, 3)], ["succeeded", "failed", "queued"])
        self.assertEqual(d.job(1)["interruptions"], 0)
        # The next id is above the pruned ones, not above max(id).
        self.assertEqual(d.submit(["true"]), 10)
        r = d.call({"op": "submit", "argv": ["true"], "key": "v3-key"})
        self.assertEqual((r["id"], r.get("duplicate")), (1, True))
        d.call({"op": "cancel", "id": 4})
        self.assertEqual(d.wait_job(4)["state"], "canceled")


if __name__ == "__main__":
    unittest.main()
