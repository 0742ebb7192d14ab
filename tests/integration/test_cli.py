"""The ringq CLI against the real daemon: output formats, exit codes,
batch submits, dependencies, queues (pause, resume), list pages, wait,
block, logs and help."""
import json
import os
import re
import subprocess
import time
import unittest

from harness import RINGQ, Daemon, DaemonTest, wait_for


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
        self.assertEqual(r.stdout.splitlines()[0].split(), ["ID", "STATE", "QUEUE", "USER", "PRIO", "TRIES", "DUE",
                                                            "REASON", "COMMAND"])
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
        self.assertIn('ringq_jobs_finished_total{state="succeeded"} 1', r.stdout.splitlines())
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


class Dependencies(DaemonTest):
    def test_after_waits_and_a_failure_cancels(self):
        gate = os.path.join(self.d.root, "gate")
        a = self.run_ok("submit", "--", "sh", "-c", "while [ ! -e %s ]; do sleep 0.05; done" % gate).stdout.strip()
        b = self.run_ok("submit", "--after", a, "--", "true").stdout.strip()
        r = self.run_ok("status", b)
        self.assertRegex(r.stdout, r"(?m)^after:\s+%s$" % a)
        self.assertRegex(r.stdout, r"(?m)^waiting for:\s+%s$" % a)
        self.assertEqual(json.loads(self.run_ok("status", "--json", b).stdout)["job"]["waiting_for"], [int(a)])
        open(gate, "w").close()
        self.run_ok("wait", b)
        r = self.run_ok("status", b)
        self.assertRegex(r.stdout, r"(?m)^after:\s+%s$" % a)
        self.assertNotIn("waiting for", r.stdout)
        self.assertRegex(self.run_ok("status", a).stdout, r"(?m)^after:\s+-$")
        # Both ids, one of which fails: the job is canceled, and says why.
        bad = self.run_ok("submit", "--", "false").stdout.strip()
        c = self.run_ok("submit", "--after", a, "--after", bad, "--", "true").stdout.strip()
        r = self.d.cli("wait", c)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("job %s canceled: dependency %s failed" % (c, bad), r.stderr)
        self.assertEqual(self.d.job(int(c))["after"], [int(a), int(bad)])

    def test_after_in_batch_and_usage(self):
        a = self.d.submit(["true"], delay_ms=3600000)
        r = self.run_ok("submit", "--after", str(a), "--batch", "-", input="true\necho hi\n")
        for jid in r.stdout.split():
            job = self.d.job(int(jid))
            self.assertEqual((job["after"], job["waiting_for"], job["state"]), ([a], [a], "queued"))
        # A repeated id counts once; 64 distinct ones are the most.
        r = self.run_ok("submit", "--after", "%d,%d" % (a, a), "--after", str(a), "--", "true")
        self.assertEqual(self.d.job(int(r.stdout))["after"], [a])
        for bad in ("0", "-1", "x", "1,,2", "1,", ",".join(str(i) for i in range(1, 66))):
            r = self.d.cli("submit", "--after", bad, "--", "true")
            self.assertEqual(r.returncode, 64, (bad, r.stderr))
            self.assertIn("--after", r.stderr)
        r = self.d.cli("submit", "--after", "999999", "--", "true")
        self.assertEqual(r.returncode, 66, r.stderr)
        self.assertIn("--after", self.run_ok("submit", "-h").stdout)


class Queues(DaemonTest):
    daemon_kwargs = {"config": "queue.slow.workers = 1\nqueue.slow.high_water = 50\n"}

    def table(self, out):
        lines = out.splitlines()
        paused_all = lines[0] == "all queues paused"
        lines = lines[1:] if paused_all else lines
        self.assertEqual(lines[0].split(), ["QUEUE", "QUEUED", "RUNNING", "WORKERS", "HIGH_WATER", "PAUSED"])
        names = [l.split()[0] for l in lines[1:]]
        self.assertEqual(names, sorted(names))
        return paused_all, {l.split()[0]: l.split()[1:] for l in lines[1:]}

    def test_pause_resume_queues_and_stats(self):
        # A queue is listed while it has jobs or settings of its own.
        self.d.submit(["true"], delay_ms=3600000)
        paused_all, rows = self.table(self.run_ok("pause", "slow").stdout)
        self.assertFalse(paused_all)
        self.assertEqual(rows["slow"], ["0", "0", "1", "50", "yes"])
        self.assertEqual(rows["default"], ["1", "0", "-", "-", "no"])
        jid = self.run_ok("submit", "-q", "slow", "--", "true").stdout.strip()
        self.run_ok("wait", self.run_ok("submit", "--", "true").stdout.strip())  # default still runs
        self.assertEqual(self.d.job(int(jid))["state"], "queued")
        self.assertEqual(self.table(self.run_ok("queues").stdout)[1]["slow"][:2], ["1", "0"])
        reply = json.loads(self.run_ok("queues", "--json").stdout)
        self.assertEqual(reply["all_paused"], False)

        r = self.run_ok("stats")
        self.assertRegex(r.stdout, r"(?m)^queues:\s+queued\s+running\s+workers$")
        self.assertRegex(r.stdout, r"(?m)^  slow\s+1\s+0\s+1  paused$")
        self.assertRegex(r.stdout, r"(?m)^  default\s+1\s+0\s+-$")
        r = self.run_ok("stats", "--prometheus")
        for line in ('ringq_queue_queued{queue="slow"} 1', 'ringq_queue_paused{queue="slow"} 1',
                     'ringq_queue_paused{queue="default"} 0', 'ringq_queue_workers{queue="slow"} 1',
                     'ringq_queue_high_water{queue="slow"} 50', "# TYPE ringq_queue_running gauge",
                     "ringq_all_paused 0"):
            self.assertIn(line, r.stdout.splitlines())
        self.assertNotIn('ringq_queue_workers{queue="default"}', r.stdout)

        paused_all, rows = self.table(self.run_ok("pause").stdout)
        self.assertTrue(paused_all)
        self.assertEqual({v[-1] for v in rows.values()}, {"yes"})
        self.assertRegex(self.run_ok("stats").stdout, r"(?m)^paused:\s+all queues$")
        self.assertIn("ringq_all_paused 1", self.run_ok("stats", "--prometheus").stdout.splitlines())
        self.run_ok("resume")
        paused_all, rows = self.table(self.run_ok("resume", "slow").stdout)
        self.assertFalse(paused_all)
        self.assertEqual(rows["slow"][-1], "no")
        self.run_ok("wait", jid)

    def test_root_only_and_usage(self):
        os.chmod(self.d.sock, 0o666)
        os.chmod(self.d.root, 0o755)
        nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--", RINGQ, "-s", self.d.sock]
        for verb in ("pause", "resume"):
            r = subprocess.run(nobody + [verb], capture_output=True, text=True, timeout=60, cwd="/")
            self.assertEqual(r.returncode, 77, r.stderr)
            self.assertIn("forbidden", r.stderr)
        r = subprocess.run(nobody + ["queues"], capture_output=True, text=True, timeout=60, cwd="/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.d.cli("pause", "a", "b").returncode, 64)
        self.assertEqual(self.d.cli("queues", "slow").returncode, 64)
        r = self.d.cli("pause", "no space")
        self.assertEqual(r.returncode, 65, r.stderr)
        for verb in ("queues", "pause", "resume"):
            self.assertIn("Usage: ringq %s" % verb, self.run_ok(verb, "-h").stdout)


class ListPages(DaemonTest):
    # Replies are cut by size well below 100 jobs of this length.
    daemon_kwargs = {"args": ["--max-reply-buffer", "8K"]}

    def test_list_follows_the_pages(self):
        ids = [self.d.submit(["echo", "x" * 400], delay_ms=3600000) for _ in range(40)]
        for args, order in ((["--oldest"], ids), ([], ids[::-1])):
            pages = [json.loads(l) for l in self.run_ok("list", "--json", *args).stdout.splitlines()]
            self.assertGreater(len(pages), 1)
            self.assertTrue(all(p.get("more") for p in pages[:-1]))
            self.assertIs(pages[-1]["more"], False)
            self.assertEqual([j["id"] for p in pages for j in p["jobs"]], order)
        r = self.run_ok("list", "--oldest")
        self.assertEqual([int(l.split()[0]) for l in r.stdout.splitlines()[1:]], ids)
        r = self.run_ok("list")
        self.assertEqual([int(l.split()[0]) for l in r.stdout.splitlines()[1:]], ids[::-1])
        # A cut list ends with what is left and how to see it.
        r = self.run_ok("list", "--oldest", "-n", "25")
        self.assertEqual([int(l.split()[0]) for l in r.stdout.splitlines()[1:-1]], ids[:25])
        self.assertEqual(r.stdout.splitlines()[-1], "15 more: ringq -s %s list -n 25 --after %d" % (self.d.sock, ids[24]))
        r = self.run_ok("list", "--after", str(ids[9]), "-n", "20")
        self.assertEqual([int(l.split()[0]) for l in r.stdout.splitlines()[1:-1]], ids[10:30])


if __name__ == "__main__":
    unittest.main()
