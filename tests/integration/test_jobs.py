"""Jobs through the real daemon: running, output, failure, spawn errors,
environment, sessions, priority and delay order, cancel, retry, backoff,
idempotency keys."""
import os
import re
import resource
import tempfile
import time
import unittest

from harness import VALGRIND, DaemonTest, procs_in_session, wait_for


class Jobs(DaemonTest):
    def test_echo_succeeds_and_output_is_kept(self):
        jid = self.d.submit(["sh", "-c", "echo hello; echo oops >&2"])
        job = self.d.wait_job(jid)
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual(job["exit_code"], 0)
        self.assertEqual(job["reason"], "exit 0")
        self.assertEqual(job["attempts"], 1)
        self.assertEqual(self.d.output(jid, "out"), "hello\n")
        self.assertEqual(self.d.output(jid, "err"), "oops\n")
        self.assertEqual(job["stdout_path"], os.path.join(self.d.state, "output", "%d.out" % jid))
        self.assertIsNotNone(job["started_at"])
        self.assertGreaterEqual(job["finished_at"], job["started_at"])
        self.assertIsNone(job["pid"])

    def test_a_job_that_writes_nothing_has_no_output_file(self):
        # Files are made at a job's first write, so a quiet job costs no
        # file creation; logs of it print nothing and succeed.
        jid = self.d.submit(["true"])
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        out = os.path.join(self.d.state, "output")
        self.assertFalse(os.path.exists(os.path.join(out, "%d.out" % jid)))
        self.assertFalse(os.path.exists(os.path.join(out, "%d.err" % jid)))
        r = self.d.cli("logs", str(jid))
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        r = self.d.cli("logs", "--stderr", str(jid))
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)

    def test_a_quiet_attempt_empties_the_last_ones_output(self):
        # Attempt 1 writes and fails; attempt 2 writes nothing and
        # succeeds: the output is attempt 2's (empty), not attempt 1's.
        flag = os.path.join(self.d.root, "quiet")
        jid = self.d.submit(["sh", "-c", "[ -e %s ] || { touch %s; echo first; echo first >&2; exit 3; }" % (flag, flag)],
                            max_attempts=2, backoff_ms=0)
        job = self.d.wait_job(jid)
        self.assertEqual((job["state"], job["attempts"]), ("succeeded", 2))
        self.assertEqual(self.d.output(jid, "out"), "")
        self.assertEqual(self.d.output(jid, "err"), "")
        self.assertEqual(self.d.cli("logs", str(jid)).stdout, "")

    def test_false_fails_with_exit_1(self):
        job = self.d.wait_job(self.d.submit(["false"]))
        self.assertEqual((job["state"], job["exit_code"], job["reason"]), ("failed", 1, "exit 1"))

    def test_signal_is_recorded(self):
        job = self.d.wait_job(self.d.submit(["sh", "-c", "kill -9 $$"]))
        self.assertEqual((job["state"], job["signal"], job["reason"]), ("failed", 9, "signal 9"))

    def test_missing_program_is_a_spawn_failure(self):
        for argv0 in ("/nonexistent/prog", "no-such-program-anywhere"):
            job = self.d.wait_job(self.d.submit([argv0]))
            self.assertEqual(job["state"], "failed")
            self.assertEqual(job["reason"], "spawn: No such file or directory")
            self.assertIsNone(job["exit_code"])
        # The daemon is still fine.
        self.assertTrue(self.d.call({"op": "ping"})["ok"])

    def test_bad_cwd_is_a_spawn_failure(self):
        job = self.d.wait_job(self.d.submit(["true"], cwd="/no/such/dir"))
        self.assertEqual(job["reason"], "spawn: No such file or directory")

    def test_env_cwd_and_ringq_variables(self):
        jid = self.d.submit(["sh", "-c", 'echo "$FOO|$RINGQ_JOB_ID|$RINGQ_ATTEMPT|$(pwd)|$HOME"'],
                            env={"FOO": "bar baz", "RINGQ_JOB_ID": "forged", "PATH": "/usr/bin:/bin"},
                            cwd="/tmp")
        self.d.wait_job(jid)
        self.assertEqual(self.d.output(jid), "bar baz|%d|1|/tmp|\n" % jid)

    def test_first_and_retried_attempts_get_the_same_env(self):
        # The first attempt starts from its submit, its environment taken
        # from the request; the retry starts from the row's text.
        d = tempfile.mkdtemp(dir=self.d.root)
        env = {"PATH": "/usr/bin:/bin", "A": "x=y", "E": "caf\u00e9", "Q": 'say "hi"\\', "Z": ""}
        jid = self.d.submit(["sh", "-c", 'env > "%s/$RINGQ_ATTEMPT"; [ "$RINGQ_ATTEMPT" = 2 ]' % d],
                            env=env, max_attempts=2, backoff_ms=0)
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        seen = []
        for attempt in ("1", "2"):
            with open(os.path.join(d, attempt), encoding="utf-8") as f:
                got = dict(l.split("=", 1) for l in f.read().splitlines())
            self.assertEqual(got.pop("RINGQ_ATTEMPT"), attempt)
            for k in ("PWD", "SHLVL", "_", "OLDPWD"):
                got.pop(k, None)
            seen.append(got)
        self.assertEqual(seen[0], seen[1])
        self.assertEqual(seen[0], dict(env, RINGQ_JOB_ID=str(jid)))

    def test_minimal_env_without_env(self):
        jid = self.d.submit(["sh", "-c", "env | sort"])
        self.d.wait_job(jid)
        env = dict(l.split("=", 1) for l in self.d.output(jid).splitlines() if "=" in l)
        self.assertEqual(env["PATH"], "/usr/local/bin:/usr/bin:/bin")
        self.assertEqual(env["USER"], "root")
        self.assertEqual(env["LOGNAME"], "root")
        self.assertIn("HOME", env)
        self.assertIn("SHELL", env)
        self.assertEqual(env["RINGQ_JOB_ID"], str(jid))
        self.assertNotIn("NOTIFY_SOCKET", env)

    def test_own_session_and_devnull_stdin(self):
        jid = self.d.submit(["python3", "-c",
                             "import os,sys; print(os.getsid(0)==os.getpid(), os.getpgid(0)==os.getpid(),"
                             " os.path.realpath('/proc/self/fd/0'), repr(sys.stdin.read()))"])
        job = self.d.wait_job(jid)
        self.assertEqual(job["state"], "succeeded", self.d.output(jid, "err"))
        self.assertEqual(self.d.output(jid), "True True /dev/null ''\n")


class Inheritance(DaemonTest):
    """What a job's process must not inherit from ringqd's: its signal
    set-up (it ignores SIGPIPE and blocks the signals it reads through
    signalfd) and its own raised open-file limit. The child changes only
    what differs from ringqd's own, so these are what it must notice."""
    start_daemon = False

    def test_a_job_starts_with_default_signals_and_the_limits_ringqd_started_with(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # ringqd raises its soft limit for max_clients; start it lower.
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        try:
            self.d.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        jid = self.d.submit(["cat", "/proc/self/status", "/proc/self/limits"])
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded", self.d.output(jid, "err"))
        out = self.d.output(jid)
        sig = dict(re.findall(r"^(Sig(?:Blk|Ign|Cgt)):\s*(\S+)$", out, re.M))
        self.assertEqual(sig, {"SigBlk": "0" * 16, "SigIgn": "0" * 16, "SigCgt": "0" * 16})
        # valgrind keeps its own RLIMIT_NOFILE for the program it runs.
        if VALGRIND:
            return
        pattern = re.compile(r"^Max open files\s+(\S+)\s+(\S+)", re.M)
        with open("/proc/%d/limits" % self.d.proc.pid) as f:
            own = pattern.search(f.read()).groups()
        job = pattern.search(out).groups()
        self.assertNotEqual(own[0], "256", "ringqd did not raise its limit: the test proves nothing")
        self.assertEqual(job, ("256", str(hard) if hard != resource.RLIM_INFINITY else "unlimited"))


class Order(DaemonTest):
    daemon_kwargs = {"workers": 1}

    def test_priority_then_run_at_then_id(self):
        log = os.path.join(self.d.root, "order")
        gate = os.path.join(self.d.root, "gate")
        blocker = self.d.submit(["sh", "-c", "while [ ! -e %s ]; do sleep 0.01; done" % gate])
        self.d.wait_state(blocker, "running")
        names = [("low", -5), ("mid1", 0), ("high", 10), ("mid2", 0), ("top", 1000), ("bottom", -1000)]
        for name, prio in names:
            self.d.submit(["sh", "-c", "echo %s >> %s" % (name, log)], priority=prio)
        open(gate, "w").close()
        wait_for(lambda: os.path.exists(log) and len(open(log).read().split()) == len(names), what="all jobs")
        self.assertEqual(open(log).read().split(), ["top", "high", "mid1", "mid2", "low", "bottom"])

    def test_delay_runs_later(self):
        log = os.path.join(self.d.root, "order")
        t0 = int(time.time() * 1000)
        late = self.d.submit(["sh", "-c", "echo late >> %s" % log], delay_ms=1500, priority=100)
        now = self.d.submit(["sh", "-c", "echo now >> %s" % log])
        self.assertEqual(self.d.wait_job(now)["state"], "succeeded")
        self.assertEqual(self.d.job(late)["state"], "queued")
        job = self.d.wait_job(late)
        self.assertEqual(open(log).read().split(), ["now", "late"])
        self.assertGreaterEqual(job["started_at"], t0 + 1500)

    def test_delayed_job_due_while_all_slots_busy(self):
        busy = self.d.submit(["sleep", "1.5"])
        self.d.wait_state(busy, "running")
        late = self.d.submit(["true"], delay_ms=200)
        time.sleep(0.5)
        # Due, but no slot: the loop must go on answering, not spin.
        for _ in range(5):
            self.assertTrue(self.d.call({"op": "ping"})["ok"])
        self.assertEqual(self.d.wait_job(late)["state"], "succeeded")

    def test_run_at_in_the_past_runs_now(self):
        job = self.d.wait_job(self.d.submit(["true"], run_at=1000))
        self.assertEqual(job["state"], "succeeded")


class Cancel(DaemonTest):
    daemon_kwargs = {"workers": 1}

    def test_cancel_running_job_kills_its_children(self):
        jid = self.d.submit(["sh", "-c", "sleep 300 & sleep 300 & wait"])
        job = self.d.wait_state(jid, "running")
        pid = job["pid"]
        wait_for(lambda: len(procs_in_session(pid)) >= 3, what="job and its children")
        r = self.d.call({"op": "cancel", "id": jid})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["job"]["state"], "canceled")
        self.assertEqual(r["job"]["reason"], "canceled")
        self.assertEqual(procs_in_session(pid), [])

    def test_cancel_ignoring_sigterm_needs_sigkill(self):
        self.d.stop()
        self.d.args += ["--kill-grace", "300ms"]
        self.d.start()
        ready = os.path.join(self.d.root, "trapped")
        jid = self.d.submit(["sh", "-c", "trap '' TERM; touch %s; sleep 300 & while :; do sleep 0.05; done" % ready])
        pid = self.d.wait_state(jid, "running")["pid"]
        wait_for(lambda: os.path.exists(ready), what="the job to ignore SIGTERM")
        t0 = time.monotonic()
        r = self.d.call({"op": "cancel", "id": jid})
        self.assertEqual(r["job"]["state"], "canceled")
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        self.assertEqual(procs_in_session(pid), [])
        self.assertEqual(self.d.stats()["counters"]["killed"], 1)

    def test_cancel_while_stopping_for_a_timeout_ends_it(self):
        # A cancel that comes while the job is being stopped for its
        # timeout is the last word: the job ends canceled and is not tried
        # again, though it had attempts left.
        self.d.stop()
        self.d.args += ["--kill-grace", "1s"]
        self.d.start()
        ready = os.path.join(self.d.root, "trapped-timeout")
        jid = self.d.submit(["sh", "-c", "trap '' TERM; touch %s; while :; do sleep 0.05; done" % ready],
                            timeout_ms=300, max_attempts=3, backoff_ms=0)
        self.d.wait_state(jid, "running")
        wait_for(lambda: os.path.exists(ready), what="the job to ignore SIGTERM")
        time.sleep(0.5)  # past its timeout: SIGTERM sent, SIGKILL due after kill_grace
        r = self.d.call({"op": "cancel", "id": jid})
        self.assertEqual((r["job"]["state"], r["job"]["reason"], r["job"]["attempts"]), ("canceled", "canceled", 1), r)
        time.sleep(0.3)
        self.assertEqual(self.d.job(jid)["state"], "canceled")

    def test_cancel_queued_job_never_runs(self):
        blocker = self.d.submit(["sleep", "300"])
        self.d.wait_state(blocker, "running")
        marker = os.path.join(self.d.root, "ran")
        jid = self.d.submit(["touch", marker])
        r = self.d.call({"op": "cancel", "id": jid})
        self.assertEqual(r["job"]["state"], "canceled")
        self.assertEqual(self.d.call({"op": "cancel", "id": blocker})["job"]["state"], "canceled")
        after = self.d.wait_job(self.d.submit(["true"]))
        self.assertEqual(after["state"], "succeeded")
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(self.d.job(jid)["started_at"], None)

    def test_cancel_finished_is_invalid_state(self):
        jid = self.d.submit(["true"])
        self.d.wait_job(jid)
        r = self.d.call({"op": "cancel", "id": jid})
        self.assertEqual((r["ok"], r["error"]), (False, "invalid_state"))
        r = self.d.call({"op": "cancel", "id": 999999})
        self.assertEqual(r["error"], "not_found")


class Retries(DaemonTest):
    def test_backoff_then_failed(self):
        jid = self.d.submit(["false"], max_attempts=3, backoff_ms=300)
        # After the first attempt it is queued again with a later run_at.
        job = wait_for(lambda: (lambda j: j["attempts"] >= 1 and j["state"] == "queued" and j)(self.d.job(jid)),
                       what="requeue")
        self.assertEqual(job["reason"], "exit 1")
        self.assertGreater(job["run_at"], job["submitted_at"])
        job = self.d.wait_job(jid)
        self.assertEqual((job["state"], job["attempts"]), ("failed", 3))
        # Two backoffs: 300ms*(1 +- 20%) + 600ms*(1 +- 20%) >= 720ms.
        self.assertGreaterEqual(job["finished_at"] - job["submitted_at"], 720)
        self.assertEqual(self.d.stats()["counters"]["retried"], 2)

    def test_backoff_is_capped_after_its_jitter(self):
        # A 1 h backoff with +-20 % jitter must still wait at most 1 h:
        # with the cap applied before the jitter, about half would wait
        # up to 1.2 h.
        ids = [self.d.submit(["false"], max_attempts=2, backoff_ms=3600000) for _ in range(12)]
        for jid in ids:
            job = wait_for(lambda: (lambda j: j["state"] == "queued" and j["attempts"] == 1 and j)(self.d.job(jid)),
                           what="job %d to be requeued" % jid)
            delay = job["run_at"] - job["started_at"]
            self.assertLessEqual(delay, 3600000 + 5000, job)
            self.assertGreaterEqual(delay, 0.8 * 3600000 - 1000, job)

    def test_succeeds_on_a_later_attempt(self):
        flag = os.path.join(self.d.root, "flag")
        jid = self.d.submit(["sh", "-c", "[ -e %s ] || { touch %s; exit 7; }" % (flag, flag)],
                            max_attempts=2, backoff_ms=0)
        job = self.d.wait_job(jid)
        self.assertEqual((job["state"], job["attempts"]), ("succeeded", 2))

    def test_retry_op_requeues_failed_job(self):
        flag = os.path.join(self.d.root, "flag2")
        jid = self.d.submit(["sh", "-c", "[ -e %s ]" % flag])
        self.assertEqual(self.d.wait_job(jid)["state"], "failed")
        open(flag, "w").close()
        r = self.d.call({"op": "retry", "id": jid})
        self.assertTrue(r["ok"], r)
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        r = self.d.call({"op": "retry", "id": jid})
        self.assertEqual(r["error"], "invalid_state")


class Keys(DaemonTest):
    def test_idempotency_key(self):
        a = self.d.call({"op": "submit", "argv": ["true"], "key": "k1"})
        b = self.d.call({"op": "submit", "argv": ["false"], "key": "k1"})
        c = self.d.call({"op": "submit", "argv": ["true"], "key": "k1", "queue": "other"})
        self.assertNotIn("duplicate", a)
        self.assertEqual((b["id"], b.get("duplicate")), (a["id"], True))
        self.assertNotEqual(c["id"], a["id"])
        self.assertEqual(self.d.wait_job(a["id"])["argv"], ["true"])


if __name__ == "__main__":
    unittest.main()
