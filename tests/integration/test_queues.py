"""Dispatch as one module, and queues an operator can steer: per-queue
caps and marks, pause and resume (kept across a restart, root only),
dependencies (chains that succeed, fail, are canceled, cross a kill -9),
list replies bounded in bytes, and the three defects the old seam had:
a stale heap entry after cancel + retry, a reading client closed for one
big reply, and requeues and retries counted wrong."""
import os
import signal
import subprocess
import time
import unittest

from harness import SLOW, Daemon, DaemonTest, wait_for

import test_privileges


def ok(r):
    assert r and r.get("ok"), r
    return r


class Defects(DaemonTest):
    daemon_kwargs = {"workers": 1, "args": ["--root-reserve-jobs", "0"]}

    def test_retry_after_cancel_keeps_the_backoff(self):
        # A delayed job's entry sits in the index; cancel and retry it, and
        # that old entry must not start it again while it backs off.
        jid = self.d.submit(["false"], delay_ms=1500, max_attempts=3, backoff_ms=20000)
        ok(self.d.call({"op": "cancel", "id": jid}))
        ok(self.d.call({"op": "retry", "id": jid}))
        wait_for(lambda: self.d.job(jid)["attempts"] == 1 and self.d.job(jid)["state"] == "queued",
                 what="attempt 1 failed and backing off")
        time.sleep(2.5)  # past the old entry's due time
        job = self.d.job(jid)
        self.assertEqual((job["state"], job["attempts"]), ("queued", 1), job)
        self.assertGreater(job["run_at"], int(time.time() * 1000) + 10000)

    def test_a_timeout_that_retries_is_a_timeout(self):
        jid = self.d.submit(["sleep", "10"], timeout_ms=200, max_attempts=2, backoff_ms=0)
        job = self.d.wait_job(jid)
        self.assertEqual((job["state"], job["reason"], job["attempts"]), ("failed", "timeout", 2))
        c = self.d.stats()["counters"]
        self.assertEqual((c["timed_out"], c["retried"], c["failed"]), (2, 1, 1))

    def test_a_manual_retry_obeys_high_water(self):
        failed = self.d.submit(["false"])
        self.d.wait_job(failed)
        self.d.stop()
        self.d.args += ["--high-water", "2", "--low-water", "1"]
        self.d.start()
        for _ in range(2):
            self.d.submit(["true"], delay_ms=3600000)
        r = self.d.call({"op": "retry", "id": failed})
        self.assertEqual(r.get("error"), "queue_full", r)
        self.assertEqual(self.d.job(failed)["state"], "failed")


class BigReplies(DaemonTest):
    daemon_kwargs = {"args": ["--max-reply-buffer", "4096"]}

    def test_a_reading_client_gets_every_job_in_pages(self):
        long_arg = "x" * 1500
        ids = [self.d.submit(["true", long_arg], delay_ms=3600000) for _ in range(5)]
        c = self.d.client()
        got, after, pages = [], 0, 0
        while True:
            r = ok(c.call({"op": "list", "after_id": after, "limit": 100}))
            pages += 1
            got += [j["id"] for j in r["jobs"]]
            self.assertLess(len(str(r)), 4096 + 1024)
            if not r.get("more"):
                break
            after = r["next_after_id"]
        self.assertEqual(got, ids)
        self.assertGreater(pages, 1)
        self.assertEqual(self.d.stats()["counters"]["slow_readers_closed"], 0)
        # The CLI follows the pages.
        r = self.d.cli("list", "--oldest") if "--oldest" in self.d.cli("list", "-h").stdout else self.d.cli("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        for i in ids:
            self.assertIn(" %d " % i, " " + r.stdout.replace("\n", " \n "))


CONF = """queue.batch.workers = 1
queue.small.high_water = 3
"""


class Queues(DaemonTest):
    # As root, but about the marks every other user meets: no root reserve.
    daemon_kwargs = {"workers": 2, "config": CONF, "args": ["--root-reserve-jobs", "0"]}

    def running_in(self, queue):
        for q in ok(self.d.call({"op": "queues"}))["queues"]:
            if q["name"] == queue:
                return q["running"]
        return 0

    def test_a_queue_never_runs_more_than_its_cap(self):
        ids = [self.d.submit(["sleep", "0.4"], queue="batch") for _ in range(4)]
        other = self.d.submit(["sleep", "0.4"], queue="default")
        seen = 0
        deadline = time.monotonic() + 20 * SLOW
        both = False
        while time.monotonic() < deadline:
            n = self.running_in("batch")
            seen = max(seen, n)
            if n == 1 and self.running_in("default") == 1:
                both = True
            if all(self.d.job(j)["state"] == "succeeded" for j in ids):
                break
            time.sleep(0.03)
        self.assertEqual(seen, 1)
        self.assertTrue(both, "the other queue ran beside the capped one")
        self.assertEqual(self.d.wait_job(other)["state"], "succeeded")
        q = [q for q in ok(self.d.call({"op": "queues"}))["queues"] if q["name"] == "batch"][0]
        self.assertEqual((q["workers"], q["high_water"]), (1, None))

    def test_a_queue_has_its_own_marks(self):
        for _ in range(3):
            self.d.submit(["true"], queue="small", delay_ms=3600000)
        r = self.d.call({"op": "submit", "argv": ["true"], "queue": "small", "delay_ms": 3600000})
        self.assertEqual((r.get("error"), r.get("scope")), ("queue_full", "queue"), r)
        self.assertIn("small", r["message"])
        self.d.submit(["true"], delay_ms=3600000)  # the default queue has room

    def test_pause_resume_across_a_restart(self):
        ok(self.d.call({"op": "pause", "queue": "batch"}))
        held = self.d.submit(["true"], queue="batch")
        free = self.d.submit(["true"])
        self.assertEqual(self.d.wait_job(free)["state"], "succeeded")
        time.sleep(0.3)
        self.assertEqual(self.d.job(held)["state"], "queued")
        self.d.stop()
        self.d.start()
        q = [q for q in ok(self.d.call({"op": "queues"}))["queues"] if q["name"] == "batch"][0]
        self.assertTrue(q["paused"])
        time.sleep(0.3)
        self.assertEqual(self.d.job(held)["state"], "queued")
        r = ok(self.d.call({"op": "resume", "queue": "batch"}))
        self.assertFalse([q for q in r["queues"] if q["name"] == "batch"][0]["paused"])
        self.assertEqual(self.d.wait_job(held)["state"], "succeeded")

    def test_pause_every_queue(self):
        r = ok(self.d.call({"op": "pause"}))
        self.assertTrue(r["all_paused"])
        a = self.d.submit(["true"])
        b = self.d.submit(["true"], queue="batch")
        time.sleep(0.3)
        self.assertEqual([self.d.job(j)["state"] for j in (a, b)], ["queued", "queued"])
        self.d.stop()
        self.d.start()
        self.assertTrue(ok(self.d.call({"op": "queues"}))["all_paused"])
        ok(self.d.call({"op": "resume"}))
        self.assertEqual([self.d.wait_job(j)["state"] for j in (a, b)], ["succeeded", "succeeded"])

    def test_a_job_coming_due_while_every_queue_is_paused(self):
        # Every queue paused and a delayed job comes due: nothing may
        # start, and nothing may wake the loop for it either (it used to
        # spin at 100 % CPU and stop answering).
        ok(self.d.call({"op": "pause"}))
        jid = self.d.submit(["true"], delay_ms=100)
        time.sleep(0.3)
        def cpu():
            with open("/proc/%d/stat" % self.d.pid()) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        before = cpu()
        time.sleep(1.0)
        self.assertLess(cpu() - before, 0.3, "ringqd is busy while nothing may run")
        self.assertTrue(self.d.call({"op": "ping"})["ok"])
        self.assertEqual(self.d.job(jid)["state"], "queued")
        ok(self.d.call({"op": "resume"}))
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")

    def test_queue_names(self):
        for bad in ("", "a b", "x" * 65, "q/1", "ä"):
            r = self.d.call({"op": "submit", "argv": ["true"], "queue": bad})
            self.assertEqual((r.get("error"), r.get("field")), ("bad_request", "queue"), bad)


class RefusedUnread(DaemonTest):
    """At the high-water mark a compact submit line, as the CLI writes
    it, is refused before it is parsed; what could change the answer
    (a queue with marks of its own, a tag, an escape that could spell
    either) still gets the whole request read."""
    daemon_kwargs = {"workers": 1, "config": CONF,
                     "args": ["--root-reserve-jobs", "0", "--high-water", "3", "--low-water", "1"]}

    def line(self, c, text):
        c.send_raw(text.encode() + b"\n")
        return c.recv()

    def test_only_what_the_answer_cannot_depend_on_is_left_unread(self):
        c = self.d.client()
        self.addCleanup(c.close)
        malformed = '{"op":"submit","argv":}'
        # Below high water a malformed line is what it is.
        self.assertEqual(self.line(c, malformed).get("error"), "bad_request")
        for _ in range(3):
            self.d.submit(["true"], delay_ms=3600000)
        full = self.d.stats()["counters"]["rejected_full"]
        r = self.line(c, '{"op":"submit","argv":["true"],"cwd":"/","delay_ms":3600000}')
        self.assertEqual(r.get("error"), "queue_full", r)
        self.assertIn("high water 3", r["message"])
        # Refused before it is read: at the mark, a malformed submit
        # gets the answer every submit gets, not a parse error.
        self.assertEqual(self.line(c, malformed).get("error"), "queue_full")
        # A queue with its own marks has room: read, and taken.
        r = self.line(c, '{"op":"submit","argv":["true"],"cwd":"/","queue":"small","delay_ms":3600000}')
        self.assertTrue(r.get("ok"), r)
        # The same key spelled with an escape is read too.
        r = self.line(c, '{"op":"submit","argv":["true"],"cwd":"/","que\\u0075e":"small","delay_ms":3600000}')
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(self.d.job(r["id"])["queue"], "small")
        # A tag comes back with the refusal.
        r = self.line(c, '{"op":"submit","argv":["true"],"cwd":"/","tag":"t7"}')
        self.assertEqual((r.get("error"), r.get("tag")), ("queue_full", "t7"), r)
        # Lines the shortcut does not know are read, and refused the same.
        r = self.d.call({"op": "submit", "argv": ["true"], "delay_ms": 3600000})
        self.assertEqual(r.get("error"), "queue_full", r)
        self.assertEqual(self.d.stats()["counters"]["rejected_full"], full + 4)
        self.assertEqual(self.d.stats()["queued"], 5)


@unittest.skipUnless(os.geteuid() == 0, "needs root to make a user")
class PauseIsRoots(DaemonTest):
    def setUp(self):
        test_privileges.ensure_users()
        super().setUp()
        os.chmod(self.d.sock, 0o666)
        os.chmod(self.d.root, 0o755)

    def test_only_root_pauses(self):
        user = test_privileges.USERS[0]
        for verb in ("pause", "resume"):
            r = test_privileges.as_user(user, [os.environ.get("RINGQ", "ringq"), "-s", self.d.sock, verb], cwd="/")
            self.assertEqual(r.returncode, 77, (verb, r.stdout, r.stderr))
        self.assertFalse(ok(self.d.call({"op": "queues"}))["all_paused"])
        # A user may not run after another user's job either.
        other = self.d.submit(["true"], delay_ms=3600000)
        r = test_privileges.as_user(user, [os.environ.get("RINGQ", "ringq"), "-s", self.d.sock, "submit", "--json",
                                           "--after", str(other), "--", "true"], cwd="/")
        self.assertEqual(r.returncode, 77, r.stdout + r.stderr)


class Dependencies(DaemonTest):
    daemon_kwargs = {"workers": 2}

    def test_a_chain_runs_in_order(self):
        a = self.d.submit(["sleep", "0.3"])
        b = self.d.submit(["true"], after=[a])
        c = self.d.submit(["true"], after=[a, b])
        jb = self.d.job(b)
        self.assertEqual((jb["state"], jb["after"], jb["waiting_for"]), ("queued", [a], [a]))
        self.assertEqual(self.d.job(c)["waiting_for"], [a, b])
        jobs = [self.d.wait_job(j) for j in (a, b, c)]
        self.assertEqual([j["state"] for j in jobs], ["succeeded"] * 3)
        self.assertGreaterEqual(jobs[1]["started_at"], jobs[0]["finished_at"])
        self.assertGreaterEqual(jobs[2]["started_at"], jobs[1]["finished_at"])
        self.assertEqual(jobs[2]["waiting_for"], [])
        # The CLI shows why a job waits.
        d = self.d.submit(["true"], delay_ms=3600000)
        e = self.d.submit(["true"], after=[d])
        r = self.d.cli("status", str(e))
        self.assertIn(str(d), [l for l in r.stdout.splitlines() if "waiting for" in l][0])

    def test_a_failure_cancels_the_rest_of_the_chain(self):
        a = self.d.submit(["false"])
        b = self.d.submit(["true"], after=[a])
        c = self.d.submit(["true"], after=[b])
        jc = self.d.wait_job(c)
        jb = self.d.job(b)
        self.assertEqual((jb["state"], jb["reason"]), ("canceled", "dependency %d failed" % a))
        self.assertEqual((jc["state"], jc["reason"]), ("canceled", "dependency %d canceled" % b))
        self.assertIsNone(jb["started_at"])
        # After a job that already failed: canceled at once.
        r = ok(self.d.call({"op": "submit", "argv": ["true"], "after": [a]}))
        self.assertEqual(self.d.job(r["id"])["reason"], "dependency %d failed" % a)
        # A dependent cannot be retried before what it runs after.
        r = self.d.call({"op": "retry", "id": b})
        self.assertEqual(r.get("error"), "invalid_state", r)
        ok(self.d.call({"op": "pause"}))  # so a cannot fail again before b is retried
        ok(self.d.call({"op": "retry", "id": a}))
        jb = ok(self.d.call({"op": "retry", "id": b}))["job"]
        self.assertEqual((jb["state"], jb["waiting_for"]), ("queued", [a]))
        ok(self.d.call({"op": "resume"}))
        self.assertEqual(self.d.wait_job(b)["state"], "canceled")  # a fails again
        self.assertEqual(self.d.stats()["counters"]["canceled"], 4)

    def test_a_cancel_cascades(self):
        a = self.d.submit(["true"], delay_ms=3600000)
        b = self.d.submit(["true"], after=[a])
        ok(self.d.call({"op": "cancel", "id": a}))
        self.assertEqual(self.d.wait_job(b)["reason"], "dependency %d canceled" % a)

    def test_after_must_name_existing_jobs(self):
        r = self.d.call({"op": "submit", "argv": ["true"], "after": [999]})
        self.assertEqual((r.get("error"), r.get("field")), ("not_found", "after"), r)
        for bad in ([], [0], ["1"], list(range(1, 66)), [1, 1]):
            r = self.d.call({"op": "submit", "argv": ["true"], "after": bad})
            self.assertEqual((r.get("error"), r.get("field")), ("bad_request", "after"), (bad, r))

    def test_a_chain_survives_kill_9(self):
        # Two attempts: the kill interrupts the first.
        a = self.d.submit(["sleep", "1"], max_attempts=2, backoff_ms=0)
        b = self.d.submit(["true"], after=[a])
        c = self.d.submit(["false"], after=[b])
        d = self.d.submit(["true"], after=[c])
        wait_for(lambda: self.d.job(a)["state"] == "running", what="a running")
        self.d.kill9()
        self.d.start()
        self.assertEqual(self.d.job(b)["waiting_for"], [a])
        jobs = [self.d.wait_job(j) for j in (a, b, c, d)]
        self.assertEqual([j["state"] for j in jobs], ["succeeded", "succeeded", "failed", "canceled"])
        self.assertEqual(jobs[3]["reason"], "dependency %d failed" % c)


if __name__ == "__main__":
    unittest.main()
