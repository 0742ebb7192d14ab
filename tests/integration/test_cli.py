"""The ringq CLI against the real daemon: output formats, exit codes,
batch submits, wait, block, logs and help."""
import json
import os
import re
import time
import unittest

from harness import Daemon, DaemonTest, wait_for


class Submit(DaemonTest):
    def test_prints_only_the_id(self):
        r = self.run_ok("submit", "--", "echo", "hi")
        self.assertRegex(r.stdout, r"^\d+\n$")
        jid = int(r.stdout)
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        r = self.run_ok("submit", "--json", "--", "true")
        self.assertEqual(json.loads(r.stdout)["ok"], True)

    def test_cwd_and_env_go_with_the_job(self):
        jid = int(self.run_ok("submit", "--", "sh", "-c", 'echo "$MYVAR $(pwd)"', env={"MYVAR": "x1"},
                              ).stdout)
        self.d.wait_job(jid)
        self.assertEqual(self.d.output(jid), "x1 %s\n" % os.getcwd())
        jid = int(self.run_ok("submit", "--no-env", "-C", "/tmp", "--", "sh", "-c", 'echo "[$MYVAR] $(pwd)"',
                              env={"MYVAR": "x1"}).stdout)
        self.d.wait_job(jid)
        self.assertEqual(self.d.output(jid), "[] /tmp\n")

    def test_options_reach_the_job(self):
        jid = int(self.run_ok("submit", "-q", "q7", "-p", "5", "--timeout", "90s", "--attempts", "3",
                              "--backoff", "2s", "--delay", "1h", "--key", "abc", "--", "true").stdout)
        job = self.d.job(jid)
        self.assertEqual((job["queue"], job["priority"], job["timeout_ms"], job["max_attempts"], job["backoff_ms"],
                          job["key"], job["state"]), ("q7", 5, 90000, 3, 2000, "abc", "queued"))
        self.assertGreater(job["run_at"], job["submitted_at"] + 3590000)
        self.assertEqual(int(self.run_ok("submit", "-q", "q7", "--key", "abc", "--", "false").stdout), jid)

    def test_wait_exit_codes(self):
        r = self.d.cli("submit", "--wait", "--", "sh", "-c", "exit 3")
        self.assertEqual(r.returncode, 3)
        self.assertRegex(r.stdout, r"^\d+\n$")
        r = self.d.cli("submit", "--wait", "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(r.returncode, 128 + 15)
        ok = self.run_ok("submit", "--", "true").stdout.strip()
        bad = self.run_ok("submit", "--", "sh", "-c", "exit 4").stdout.strip()
        self.assertEqual(self.d.cli("wait", ok).returncode, 0)
        self.assertEqual(self.d.cli("wait", ok, bad).returncode, 4)
        slow = self.run_ok("submit", "--", "sleep", "10").stdout.strip()
        t0 = time.monotonic()
        r = self.d.cli("wait", "--timeout", "300ms", slow)
        self.assertEqual(r.returncode, 124)
        self.assertLess(time.monotonic() - t0, 5)
        self.run_ok("cancel", slow)

    def test_batch_over_one_connection(self):
        lines = "".join("echo line%d\n" % i for i in range(300)) + "\n" + "exit 9\n"
        r = self.d.cli("submit", "--batch", "-", input=lines)
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = [int(x) for x in r.stdout.split()]
        self.assertEqual(len(ids), 301)
        self.assertEqual(ids, sorted(ids))
        last = self.d.wait_job(ids[-1])
        self.assertEqual(last["argv"], ["/bin/sh", "-c", "exit 9"])
        self.d.wait_job(ids[0])
        self.assertEqual(self.d.output(ids[0]), "line0\n")
        path = os.path.join(self.d.root, "batch")
        with open(path, "w") as f:
            f.write("true\nexit 2\n")
        r = self.d.cli("submit", "--wait", "--batch", path)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stdout.split()), 2)

    def test_usage_and_request_errors(self):
        r = self.d.cli("submit")
        self.assertEqual(r.returncode, 64)
        r = self.d.cli("submit", "--delay", "soon", "--", "true")
        self.assertEqual(r.returncode, 64)
        self.assertIn("ringq submit --help", r.stderr)
        r = self.d.cli("frobnicate")
        self.assertEqual(r.returncode, 64)
        r = self.d.cli("submit", "-q", "has space", "--", "true")
        self.assertEqual(r.returncode, 65)
        self.assertIn("bad_request", r.stderr)
        r = self.d.cli("status", "999999")
        self.assertEqual(r.returncode, 66)
        self.assertIn("not_found", r.stderr)


class Inspect(DaemonTest):
    def test_status_list_cancel_retry_logs(self):
        a = self.run_ok("submit", "--", "sh", "-c", "echo out; echo err >&2").stdout.strip()
        self.run_ok("wait", a)
        r = self.run_ok("status", a)
        self.assertRegex(r.stdout, r"state:\s+succeeded")
        self.assertRegex(r.stdout, r"reason:\s+exit 0")
        st = json.loads(self.run_ok("status", "--json", a).stdout)
        self.assertEqual(st["job"]["id"], int(a))
        self.assertEqual(self.run_ok("logs", a).stdout, "out\n")
        self.assertEqual(self.run_ok("logs", "--stderr", a).stdout, "err\n")

        b = self.run_ok("submit", "--", "sleep", "30").stdout.strip()
        self.d.wait_state(int(b), "running")
        r = self.run_ok("list")
        self.assertEqual(r.stdout.splitlines()[0].split(), ["ID", "STATE", "QUEUE", "PRIO", "TRIES", "REASON",
                                                            "COMMAND"])
        self.assertIn("sleep 30", r.stdout)
        r = self.run_ok("list", "--state", "running")
        self.assertEqual([l.split()[0] for l in r.stdout.splitlines()[1:]], [b])
        self.assertEqual(self.run_ok("cancel", b).stdout.split(), [b, "canceled"])
        self.assertEqual(self.d.cli("cancel", "424242").returncode, 66)
        self.assertEqual(self.run_ok("retry", b).stdout.split(), [b, "queued"])
        self.run_ok("cancel", b)

    def test_terminal_controls_are_not_printed(self):
        # Root lists every user's jobs: what a job was given must not
        # drive root's terminal. C0, DEL, C1 (UTF-8) and invalid bytes.
        odd = os.path.join(self.d.root, "d\x1b]0;x\x07")
        os.mkdir(odd)
        jid = self.d.call({"op": "submit", "argv": ["echo", "\x1b[2J", "\u009b31m", "a\x7fb", "ok\u00e9"],
                           "cwd": odd, "delay_ms": 3600000})["id"]
        for args in (["status", str(jid)], ["list"]):
            r = self.d.cli(*args, env={"COLUMNS": "300"})
            self.assertEqual(r.returncode, 0, r.stderr)
            for bad in ("\x1b", "\x07", "\x7f", "\u009b"):
                self.assertNotIn(bad, r.stdout, args)
            self.assertIn("ok\u00e9", r.stdout)
        self.assertIn("d?]0;x?", self.d.cli("status", str(jid)).stdout)

    def test_logs_follow(self):
        jid = self.run_ok("submit", "--", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done").stdout.strip()
        r = self.run_ok("logs", "-f", jid)
        self.assertEqual(r.stdout, "1\n2\n3\n")

    def test_stats_and_prometheus(self):
        self.run_ok("wait", self.run_ok("submit", "--", "true").stdout.strip())
        r = self.run_ok("stats")
        self.assertRegex(r.stdout, r"state:\s+accepting")
        self.assertRegex(r.stdout, r"queued:\s+0/10000")
        r = self.run_ok("stats", "--prometheus")
        self.assertIn("# TYPE ringq_queued gauge", r.stdout)
        self.assertRegex(r.stdout, r'ringq_jobs_total\{result="succeeded"\} 1')
        s = json.loads(self.run_ok("stats", "--json").stdout)
        self.assertEqual(s["counters"]["succeeded"], 1)

    def test_ping_and_socket_from_env(self):
        self.assertRegex(self.run_ok("ping").stdout, r"^ringqd \d+\.\d+\.\d+ protocol 1")
        import subprocess
        from harness import RINGQ
        env = dict(os.environ, RINGQ_SOCKET=self.d.sock)
        r = subprocess.run([RINGQ, "ping"], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_unreachable(self):
        r = self.d.cli("ping", "-s", os.path.join(self.d.root, "nobody.sock"))
        self.assertEqual(r.returncode, 69)
        self.assertIn("cannot connect to", r.stderr)

    def test_help_everywhere(self):
        r = self.run_ok("--help")
        verbs = ["submit", "status", "list", "cancel", "retry", "wait", "logs", "stats", "top", "ping"]
        for v in verbs:
            self.assertIn(v, r.stdout)
            h = self.run_ok(v, "-h")
            self.assertIn("--json", h.stdout)
            self.assertIn("Usage: ringq %s" % v, h.stdout)
        self.assertIn("--batch", self.run_ok("submit", "-h").stdout)
        self.assertIn("--prometheus", self.run_ok("stats", "-h").stdout)


class Block(DaemonTest):
    daemon_kwargs = {"workers": 1, "args": ["--high-water", "2", "--low-water", "1", "--root-reserve-jobs", "0"]}

    def test_queue_full_and_block(self):
        blocker = self.d.submit(["sleep", "30"])
        self.d.wait_state(blocker, "running")
        self.d.submit(["sleep", "0.1"])
        self.d.submit(["sleep", "0.1"])
        r = self.d.cli("submit", "--", "true")
        self.assertEqual(r.returncode, 75)
        self.assertIn("queue_full", r.stderr)
        t0 = time.monotonic()
        r = self.d.cli("submit", "--block", "--block-timeout", "400ms", "--", "true")
        self.assertEqual(r.returncode, 75)
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        # Once the blocker goes, the queue drains below low water and a
        # blocked submit gets in.
        t0 = time.monotonic()
        import threading
        threading.Timer(0.5, lambda: self.d.call({"op": "cancel", "id": blocker})).start()
        r = self.d.cli("submit", "--block", "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(time.monotonic() - t0, 0.4)
        self.assertEqual(self.d.wait_job(int(r.stdout))["state"], "succeeded")

if __name__ == "__main__":
    unittest.main()
