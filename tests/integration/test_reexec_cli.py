"""The CLI across a re-exec in place and across a crash of ringqd, with
the real daemon and the real ringq:

- `ringq admin reexec`: as root it reports the jobs the new process
  adopted (text, --json, and then stats and Prometheus); as another user
  it is refused (forbidden, exit 77) and ringqd stays as it is; a re-exec
  ringqd gives up (its binary is gone) is reported as given up, exit 1
- `ringq wait`, `ringq submit --wait`, `ringq submit --batch --wait` and
  `ringq logs -f` started before a re-exec (SIGUSR2) end with the job's
  real result after it, the output printed once
- the same across a kill -9 and a restart with a pause between, where
  every connection ends and the CLI must connect again and ask again:
  only the waits not yet answered, with what is left of --timeout, and
  no submit sent twice
"""
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

from harness import RINGQ, SLOW, Daemon, DaemonTest, wait_for

IS_ROOT = os.geteuid() == 0
# Per test process, as the module may run twice at once (plain and under
# valgrind) and each removes its own user at the end.
USER = "ringqrx%d" % (os.getpid() % 100000)


def setUpModule():
    if not IS_ROOT:
        return
    tearDownModule()
    subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-U", USER], check=True)


def tearDownModule():
    if not IS_ROOT:
        return
    subprocess.run(["userdel", USER], capture_output=True)
    subprocess.run(["groupdel", USER], capture_output=True)


def once(marker, first, then):
    """A shell line: `first` on the job's first run, `then` on any run
    after it (a run that an interruption made start over)."""
    return "if [ -e %s ]; then %s; else touch %s; %s; fi" % (marker, then, marker, first)


class CliAcross(DaemonTest):
    daemon_kwargs = {"workers": 4}

    def spawn(self, *args, input=""):
        stdin = os.path.join(self.d.root, "stdin-%d" % len(os.listdir(self.d.root)))
        with open(stdin, "w") as f:
            f.write(input)
        with open(stdin) as f:
            p = subprocess.Popen([RINGQ, "-s", self.d.sock] + list(args), stdin=f, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p

    def finish(self, p, timeout=60):
        out, err = p.communicate(timeout=timeout * SLOW)
        return p.returncode, out, err

    def marker(self, name):
        return os.path.join(self.d.root, name)

    def connections(self):
        return self.d.stats()["connections"] - 1  # not the one asking

    def settle(self, n):
        """Until n CLIs are connected, and a moment for their waits to
        reach ringqd."""
        wait_for(lambda: self.connections() == n, what="%d clients connected" % n)
        time.sleep(0.3)

    def reexec(self):
        pid = self.d.pid()
        os.kill(pid, signal.SIGUSR2)
        st = wait_for(lambda: (lambda s: s["reexecs"] == 1 and s)(self.d.stats()), timeout=30,
                      what="the re-exec")
        self.assertEqual(st["pid"], pid)
        return st

    def crash_and_restart(self, pause=2.0):
        """kill -9, nothing at the socket for a while (connects are
        refused), then a new ringqd: every connection ends."""
        self.d.kill9()
        time.sleep(pause)
        self.d.start()

    def job_ids(self):
        return sorted(j["id"] for j in self.d.call({"op": "list", "limit": 1000})["jobs"])

    def assert_waits_answered(self, waiter, submitter, batch, quick, slow):
        """wait QUICK SLOW, submit --wait and submit --batch --wait, each
        answered once with its job's real end (exit 3, 5, 6)."""
        rc, out, err = self.finish(waiter)
        self.assertEqual(rc, 3, err)
        # The answered wait is not asked again: one reply per id.
        self.assertEqual([json.loads(l)["job"]["id"] for l in out.splitlines()], [quick, slow])
        self.assertEqual(json.loads(out.splitlines()[1])["job"]["reason"], "exit 3")
        self.assertEqual(err, "ringq: job %d failed: exit 3\n" % slow)
        rc, out, err = self.finish(submitter)
        self.assertEqual((rc, err), (5, "ringq: job %s failed: exit 5\n" % out.strip()))
        rc, out, err = self.finish(batch)
        self.assertEqual(rc, 6, err)
        self.assertEqual(len(out.split()), 2)


@unittest.skipUnless(IS_ROOT, "needs root for ringq admin and to make a user")
class AdminReexec(CliAcross):
    def test_reports_the_adopted_jobs(self):
        jobs = [self.d.submit(["sleep", "4"]) for _ in range(2)]
        for jid in jobs:
            self.d.wait_state(jid, "running")
        pid = self.d.pid()
        r = self.run_ok("admin", "reexec")
        self.assertEqual(r.stdout, "ringqd re-executed (pid %d): 2 running job(s) adopted\n" % pid)
        self.assertEqual(r.stderr, "")
        st = self.d.stats()
        self.assertEqual((st["pid"], st["reexecs"], st["counters"]["adopted"]), (pid, 1, 2))
        self.assertIn("job %d adopted across a re-exec" % jobs[0], self.d.logtext())

        # --json: one object, from what the new process says.
        out = self.run_ok("admin", "--json", "reexec").stdout.splitlines()
        self.assertEqual(len(out), 1, out)
        o = json.loads(out[0])
        self.assertEqual((o["ok"], o["outcome"], o["pid"], o["reexecs"], o["adopted"], o["reexec_failed"]),
                         (True, "reexecuted", pid, 2, 2, 0))

        # Where stats shows them.
        text = self.run_ok("stats").stdout
        self.assertRegex(text, r"(?m)^pid:\s+%d$" % pid)
        self.assertRegex(text, r"(?m)^reexecs:\s+2$")
        self.assertRegex(text, r"\badopted 2\b")
        self.assertRegex(text, r"\breexec_failed 0\b")
        prom = self.run_ok("stats", "--prometheus").stdout.splitlines()
        for line in ("ringq_pid %d" % pid, "ringq_reexecs 2", "ringq_jobs_adopted_total 2",
                     "ringq_reexec_failures_total 0"):
            self.assertIn(line, prom)
        for jid in jobs:
            self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")

    def open_to_others_with_a_job(self):
        """The socket open to every user, one of root's jobs running: its
        id and the throwaway user's passwd entry."""
        os.chmod(self.d.root, 0o755)
        os.chmod(self.d.sock, 0o666)
        jid = self.d.submit(["sleep", "30"])
        self.addCleanup(self.d.call, {"op": "cancel", "id": jid})
        self.d.wait_state(jid, "running")
        pw = pwd.getpwnam(USER)
        return jid, pw

    def test_refused_to_others(self):
        jid, pw = self.open_to_others_with_a_job()
        r = subprocess.run(["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid), "--clear-groups",
                            "--", RINGQ, "-s", self.d.sock, "admin", "reexec"],
                           capture_output=True, text=True, timeout=60 * SLOW, cwd="/")
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertRegex(r.stderr, r"^ringq: forbidden: .*root")
        self.assertEqual(r.stdout, "")
        time.sleep(0.5)
        st = self.d.stats()
        self.assertEqual((st["pid"], st["reexecs"], st["state"]), (self.d.pid(), 0, "accepting"))
        self.assertNotIn("re-executing", self.d.logtext())
        self.assertEqual(self.d.job(jid)["state"], "running")

    def test_a_client_that_never_reads_cannot_hold_it(self):
        """A hostile user keeps replies unread on its connection (a tiny
        receive buffer, pipelined pings with long tags, no reads): the
        re-exec does not wait on it past half of reexec_timeout, closes
        it like a slow reader and goes through; root's jobs go on."""
        jid, pw = self.open_to_others_with_a_job()
        hog = ("import json, socket, sys, time\n"
               "s = socket.socket(socket.AF_UNIX)\n"
               "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)\n"
               "s.connect(sys.argv[1])\n"
               "s.sendall(b''.join(json.dumps({'op': 'ping', 'tag': 'x' * 1000}).encode() + b'\\n'"
               " for _ in range(600)))\n"
               "print('sent', flush=True)\n"
               "time.sleep(60)\n")
        p = subprocess.Popen(["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid), "--clear-groups",
                              "--", sys.executable, "-c", hog, self.d.sock],
                             stdout=subprocess.PIPE, text=True, cwd="/")
        self.addCleanup(p.kill)
        self.assertEqual(p.stdout.readline(), "sent\n")
        time.sleep(0.3)
        t0 = time.monotonic()
        r = self.d.cli("admin", "reexec")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertLess(time.monotonic() - t0, 15, "the re-exec waited for the hostile client")
        st = self.d.stats()
        self.assertEqual((st["reexecs"], st["counters"]["reexec_failed"]), (1, 0))
        self.assertEqual(self.d.job(jid)["state"], "running")
        self.assertIn("re-exec: handing", self.d.logtext())

    def test_usage(self):
        self.assertEqual(self.d.cli("admin").returncode, 64)
        r = self.d.cli("admin", "reboot")
        self.assertEqual(r.returncode, 64)
        self.assertIn("unknown admin command 'reboot'", r.stderr)
        self.assertEqual(self.d.cli("admin", "reexec", "now").returncode, 64)
        self.assertIn("Usage: ringq admin", self.run_ok("help", "admin").stdout)
        self.assertRegex(self.run_ok("help").stdout, r"(?m)^  admin +Operate ringqd itself, root only")
        self.assertEqual(self.d.stats()["reexecs"], 0)


@unittest.skipUnless(IS_ROOT, "needs root for ringq admin")
class AdminReexecGivenUp(unittest.TestCase):
    def test_binary_gone(self):
        # ringqd runs again the path it was started from: a copy,
        # removed before the re-exec, makes the exec fail.
        d = Daemon(workers=2)
        self.addCleanup(d.cleanup)
        copy = os.path.join(d.root, "ringqd-copy")
        shutil.copy(os.environ.get("RINGQD", "ringqd"), copy)
        command = d.command
        d.command = lambda: [copy if w == os.environ.get("RINGQD", "ringqd") else w for w in command()]
        d.start()
        jid = d.submit(["sleep", "2"])
        d.wait_state(jid, "running")
        os.unlink(copy)
        r = d.cli("admin", "reexec")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "ringq: ringqd gave the re-exec up and goes on as before (pid %d); its journal "
                                   "says why\n" % d.pid())
        st = d.stats()
        self.assertEqual((st["reexecs"], st["counters"]["reexec_failed"], st["state"]), (0, 1, "accepting"))
        self.assertEqual(d.wait_job(jid)["state"], "succeeded")


class WaitsAcrossReexec(CliAcross):
    def test_waits_and_follow_end_with_the_real_result(self):
        slow = self.d.submit(["sh", "-c", "sleep 2; exit 3"])
        quick = self.d.submit(["true"])
        self.d.wait_job(quick)
        follow = self.d.submit(["sh", "-c", "echo before; sleep 2; echo after"])
        self.d.wait_state(slow, "running")
        wait_for(lambda: self.d.output(follow) == "before\n", what="the first line")
        waiter = self.spawn("wait", "--json", str(quick), str(slow))
        submitter = self.spawn("submit", "--wait", "--", "sh", "-c", "sleep 2; exit 5")
        batch = self.spawn("submit", "--batch", "-", "--wait", input="true\nsleep 2; exit 6\n")
        logs = self.spawn("logs", "-f", str(follow))
        self.settle(4)
        self.reexec()

        self.assert_waits_answered(waiter, submitter, batch, quick, slow)
        self.assertEqual(self.finish(logs), (0, "before\nafter\n", ""))
        self.assertEqual(self.d.stats()["reexecs"], 1)


class WaitsAcrossCrash(CliAcross):
    def test_waits_ask_again(self):
        quick = self.d.submit(["true"])
        self.d.wait_job(quick)
        # Each job runs again after the crash (an interrupted run is
        # queued again; a second attempt if interruptions count as one),
        # and ends differently the second time.
        slow = self.d.submit(["sh", "-c", once(self.marker("w"), "sleep 60", "exit 3")], max_attempts=2)
        timed = self.d.submit(["sleep", "60"], max_attempts=2)
        self.addCleanup(self.d.call, {"op": "cancel", "id": timed})
        waiter = self.spawn("wait", "--json", str(quick), str(slow))
        t0 = time.monotonic()
        timeout = 6
        timer = self.spawn("wait", "--timeout", "%ds" % timeout, str(timed))
        submitter = self.spawn("submit", "--attempts", "2", "--wait", "--",
                               "sh", "-c", once(self.marker("s"), "sleep 60", "exit 5"))
        batch = self.spawn("submit", "--attempts", "2", "--batch", "-", "--wait",
                           input="true\n%s\n" % once(self.marker("b"), "sleep 60", "exit 6"))
        self.settle(4)
        for name in ("w", "s", "b"):
            wait_for(lambda: os.path.exists(self.marker(name)), what="job %s running" % name)
        before = self.job_ids()
        self.crash_and_restart()
        restarted = time.monotonic() - t0

        self.assert_waits_answered(waiter, submitter, batch, quick, slow)

        # --timeout counts from the start, not again from the reconnect:
        # it ends at `timeout`, not `timeout` after the restart.
        rc, out, err = self.finish(timer)
        took = time.monotonic() - t0
        self.assertEqual(rc, 124, err)
        self.assertIn("timeout", err)
        # Asked again with all of it, it would end at restarted + timeout.
        self.assertLess(took, max(timeout, restarted) + min(timeout, restarted) / 2,
                        "restarted after %.1fs" % restarted)
        # No submit was sent twice.
        self.assertEqual(self.job_ids(), before)

    def test_follow_goes_on(self):
        # The first run writes a line and is cut short; the run after it
        # starts its output afresh, and follow prints that.
        jid = self.d.submit(["sh", "-c", once(self.marker("f"), "echo before; sleep 60", "sleep 1; echo after")],
                            max_attempts=2)
        wait_for(lambda: self.d.output(jid) == "before\n", what="the first line")
        logs = self.spawn("logs", "-f", str(jid))
        self.settle(1)
        self.crash_and_restart()
        self.assertEqual(self.finish(logs), (0, "before\nafter\n", ""))
        self.assertEqual(self.d.job(jid)["state"], "succeeded")

    def test_follow_of_a_job_without_output_yet(self):
        # No file yet: -f asks for it again until there is one.
        jid = self.d.submit(["sh", "-c", once(self.marker("n"), "sleep 60", "echo late")], max_attempts=2)
        wait_for(lambda: os.path.exists(self.marker("n")), what="the job running")
        logs = self.spawn("logs", "-f", str(jid))
        self.settle(1)
        self.crash_and_restart()
        self.assertEqual(self.finish(logs), (0, "late\n", ""))

    def test_gone_for_good(self):
        # Nothing answers again: the wait ends, unreachable, once the
        # time allowed has passed, or its --timeout.
        jid = self.d.submit(["sleep", "60"])
        self.d.wait_state(jid, "running")
        waiter = self.spawn("wait", str(jid))
        timer = self.spawn("wait", "--timeout", "4s", str(jid))
        self.settle(2)
        t0 = time.monotonic()
        self.d.kill9()
        rc, out, err = self.finish(timer)
        took = time.monotonic() - t0
        self.assertEqual(rc, 69, err)
        self.assertRegex(err, r"connection closed by ringqd, and nothing answered there again before the timeout")
        self.assertLess(took, 4 + 2 * SLOW)
        rc, out, err = self.finish(waiter, timeout=90)
        took = time.monotonic() - t0
        self.assertEqual(rc, 69, err)
        self.assertRegex(err, r"connection closed by ringqd, and nothing answered there again within 30 s")
        self.assertGreater(took, 29)
        self.assertLess(took, 45)


if __name__ == "__main__":
    unittest.main()
