"""Start, stop and crash: READY/STATUS/STOPPING, the drain on SIGTERM,
recovery after kill -9, and start-up errors that name their cause."""
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import unittest

from harness import RINGQD, VALGRIND, Daemon, DaemonTest, procs_in_session, wait_for


def proc_group(pgid):
    """Live pids whose process group is pgid."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                found.append(int(d))
    return found


def db_rows(d, sql):
    db = d.db()
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


class Notify(DaemonTest):
    def test_ready_status_stopping(self):
        n = self.d.notify
        self.assertTrue(n.has("READY", "1"))
        self.assertEqual(n.statuses()[0], "accepting; queued 0/10000; running 0/2; ok 0, failed 0; rejected 0")
        self.d.wait_job(self.d.submit(["true"]))
        wait_for(lambda: any("ok 1, failed 0" in s for s in n.statuses()), what="status after a job")
        self.assertEqual(self.d.stop(), 0)
        self.assertTrue(n.has("STOPPING", "1"))
        self.assertTrue(n.statuses()[-1].startswith("draining; "))

    def test_reload_keeps_running(self):
        n = self.d.notify
        os.kill(self.d.pid(), signal.SIGHUP)
        wait_for(lambda: [k for k, v in n.fields() if k in ("RELOADING", "READY")] == ["READY", "RELOADING", "READY"],
                 what="RELOADING then READY")
        self.assertTrue(self.d.call({"op": "ping"})["ok"])


class Idle(DaemonTest):
    @unittest.skipIf(VALGRIND, "under valgrind the loop polls on purpose (loop.c)")
    def test_idle_daemon_sleeps(self):
        """No polling: an idle loop thread is not woken at all."""
        self.d.wait_job(self.d.submit(["true"]))
        time.sleep(1.5)  # let the once-a-second status update go out

        def switches():
            with open("/proc/%d/task/%d/status" % (self.d.pid(), self.d.pid())) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        return int(line.split()[1])
        before = switches()
        time.sleep(2)
        self.assertEqual(switches() - before, 0)


class Drain(DaemonTest):
    def test_running_job_finishes_then_exit(self):
        jid = self.d.submit(["sleep", "1"])
        self.d.wait_state(jid, "running")
        c = self.d.client()
        os.kill(self.d.pid(), signal.SIGTERM)
        wait_for(lambda: self.d.notify.has("STOPPING", "1"), what="STOPPING=1")
        r = c.call({"op": "submit", "argv": ["true"]})
        self.assertEqual(r["error"], "shutting_down")
        self.assertEqual(self.d.proc.wait(15), 0)
        self.assertEqual(db_rows(self.d, "select state, reason from jobs where id=%d" % jid),
                         [("succeeded", "exit 0")])
        self.assertFalse(os.path.exists(self.d.sock))

    def test_grace_over_interrupts(self):
        self.d.stop()
        self.d.args += ["--shutdown-grace", "500ms", "--kill-grace", "200ms"]
        self.d.start()
        once = self.d.submit(["sleep", "60"])
        twice = self.d.submit(["sleep", "60"], max_attempts=2)
        self.d.wait_state(once, "running")
        self.d.wait_state(twice, "running")
        pid = self.d.job(once)["pid"]
        t0 = time.monotonic()
        self.assertEqual(self.d.stop(), 0)
        self.assertLess(time.monotonic() - t0, 10)
        # Queued again with the attempt given back: the stop was not the
        # jobs' doing (test_interruptions.py has the rest).
        rows = dict((r[0], r[1:]) for r in db_rows(self.d, "select id, state, reason, attempts from jobs"))
        self.assertEqual(rows[once], ("queued", "interrupted (1 of 3)", 0))
        self.assertEqual(rows[twice], ("queued", "interrupted (1 of 3)", 0))
        self.assertEqual(procs_in_session(pid), [])
        # The requeued jobs run after a restart, as the same attempt.
        self.d.start()
        self.assertEqual(self.d.wait_state(once, "running")["attempts"], 1)
        self.assertEqual(self.d.wait_state(twice, "running")["attempts"], 1)


class Crash(DaemonTest):
    daemon_kwargs = {"workers": 2}

    def test_kill9_loses_no_acknowledged_job(self):
        acked, stop = [], threading.Event()
        errors = []

        def submitter(k):
            c = None
            try:
                c = self.d.client()
                i = 0
                while not stop.is_set():
                    argv = ["sh", "-c", "sleep 30 & sleep 30"] if i % 50 == 0 else ["true"]
                    r = c.call({"op": "submit", "argv": argv, "max_attempts": 1 + (i % 2)})
                    if r is None:
                        return
                    if r.get("ok"):
                        acked.append(r["id"])
                    i += 1
            except (OSError, EOFError, ValueError):
                return
            except Exception as e:  # pragma: no cover
                errors.append(e)
            finally:
                if c:
                    c.close()

        threads = [threading.Thread(target=submitter, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) > 300, what="a stream of submits")
        wait_for(lambda: self.d.stats()["running"] > 0, what="a running job")
        self.d.kill9()
        running = db_rows(self.d, "select id, pid from jobs where state='running'")
        self.assertTrue(running, "some job was running at the crash")
        self.assertTrue(os.path.exists(self.d.sock), "kill -9 leaves the socket file behind")

        # At once; the submitters' connections died with ringqd, so they
        # end on their own and are joined after.
        self.d.start()
        stop.set()
        for t in threads:
            t.join(10)
        self.assertEqual(errors, [])
        self.assertIn("removing stale socket", self.d.logtext())
        ids = set(r[0] for r in db_rows(self.d, "select id from jobs"))
        missing = set(acked) - ids
        self.assertEqual(missing, set(), "acknowledged jobs lost")
        for jid, pid in running:
            self.assertEqual(procs_in_session(pid), [], "leftover processes of job %d" % jid)
            # Queued again with the attempt given back; it may have
            # started since (which clears the reason) or even ended.
            state, reason, interruptions = db_rows(
                self.d, "select state, reason, interruptions from jobs where id=%d" % jid)[0]
            self.assertEqual(interruptions, 1)
            self.assertIn(reason, ("interrupted (1 of 3)", None, "exit 0"))
            self.assertIn(state, ("queued", "running", "succeeded"))
        self.assertIn("interrupted job(s)", self.d.logtext())
        # Every job eventually ends: the quick ones run, the long ones are
        # canceled.
        for st in ("running", "queued"):
            for j in self.d.call({"op": "list", "state": st, "limit": 1000})["jobs"]:
                if "30" in j["argv"][-1]:
                    self.d.call({"op": "cancel", "id": j["id"]})
        wait_for(lambda: db_rows(self.d, "select count(*) from jobs where state in ('queued','running')")[0][0] == 0,
                 timeout=60, what="all jobs to end")


class Restored(DaemonTest):
    def test_recovery_spares_strangers_in_an_old_jobs_group(self):
        # A database put back from an older copy says a job runs as pid P;
        # P has since led a stranger's process group, whose leader is gone
        # and whose members live on. Recovery must not kill them.
        jid = self.d.submit(["true"])
        self.d.wait_job(jid)
        self.d.stop()
        leader = subprocess.Popen(["setsid", "sh", "-c", "sleep 300 & sleep 300 & echo $$; wait"],
                                  stdout=subprocess.PIPE, text=True, start_new_session=False)
        pgid = int(leader.stdout.readline())
        members = wait_for(lambda: [p for p in proc_group(pgid) if p != pgid] if len(proc_group(pgid)) >= 3 else None,
                           what="the stranger's group")
        os.kill(pgid, signal.SIGKILL)
        leader.wait()
        self.addCleanup(lambda: [os.kill(p, signal.SIGKILL) for p in members if os.path.exists("/proc/%d" % p)])
        db = sqlite3.connect(os.path.join(self.d.state, "queue.db"))
        db.execute("UPDATE jobs SET state = 'running', pid = ?, finished_at = NULL WHERE id = ?", (pgid, jid))
        db.commit()
        db.close()
        self.d.start()
        # Recovered as interrupted (its attempt given back), run again.
        r = self.d.wait_job(jid)
        self.assertEqual((r["state"], r["interruptions"], r["attempts"]), ("succeeded", 1, 1), r)
        for p in members:
            self.assertTrue(os.path.exists("/proc/%d" % p), "recovery killed a stranger's process %d" % p)
        self.assertIn("not of the job; leaving it alone", self.d.logtext())

    def test_output_of_ids_not_given_yet_is_removed_at_start(self):
        # A database put back from an older copy gives ids again whose
        # output files a later job left; the new job must not show them.
        first = self.d.submit(["true"])
        self.d.wait_job(first)
        self.d.stop()
        out = os.path.join(self.d.state, "output")
        for name in ("%d.out" % (first + 2), "%d.err" % (first + 2), "%d.out" % first):
            with open(os.path.join(out, name), "w") as f:
                f.write("from a job the database does not know\n")
        self.d.start()
        self.assertFalse(os.path.exists(os.path.join(out, "%d.out" % (first + 2))))
        self.assertFalse(os.path.exists(os.path.join(out, "%d.err" % (first + 2))))
        self.assertTrue(os.path.exists(os.path.join(out, "%d.out" % first)), "a known job's file is kept")
        ids = [self.d.submit(["true"], delay_ms=3600000) for _ in range(2)]
        self.assertEqual(ids[-1], first + 2)
        r = self.d.cli("logs", str(first + 2))
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        self.assertIn("removed 2 file(s)", self.d.logtext())


class StartupErrors(unittest.TestCase):
    def run_daemon(self, d, extra=(), timeout=10, preexec=None):
        p = subprocess.run(d.command() + list(extra), capture_output=True, text=True, timeout=timeout,
                           preexec_fn=preexec)
        return p.returncode, p.stderr

    def daemon(self, **kw):
        d = Daemon(**kw)
        self.addCleanup(d.cleanup)
        return d

    def test_bad_config_line(self):
        d = self.daemon(config="workers = 2\nhigh_water = lots\n")
        rc, err = self.run_daemon(d)
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertRegex(err, r"ringqd\.conf:2: high_water: 'lots' is not a whole number")

    def test_unknown_key_and_bad_flag(self):
        d = self.daemon(config="# comment\n\nhigh_watr = 5\n")
        rc, err = self.run_daemon(d)
        self.assertNotEqual(rc, 0)
        self.assertIn("ringqd.conf:3: unknown key 'high_watr'", err)
        d = self.daemon(args=["--kill-grace", "soon"])
        rc, err = self.run_daemon(d)
        self.assertNotEqual(rc, 0)
        self.assertIn("--kill-grace: 'soon' is not a duration", err)
        d = self.daemon(args=["--low-water", "20", "--high-water", "10"])
        rc, err = self.run_daemon(d)
        self.assertIn("low_water (20) must be below high_water (10)", err)

    @unittest.skipIf(VALGRIND, "valgrind itself cannot write its log as that user")
    def test_unwritable_state_dir(self):
        d = self.daemon()
        os.makedirs(d.state, mode=0o755)
        os.chmod(d.root, 0o755)
        os.chown(d.sock.rsplit("/", 1)[0], 0, 0)

        def drop():
            os.setgid(65534)
            os.setgroups([])
            os.setuid(65534)
        rc, err = self.run_daemon(d, preexec=drop)
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("state dir %s" % d.state, err)
        self.assertIn("Permission denied", err)

    def test_socket_served_by_live_daemon(self):
        a = self.daemon().start()
        b = self.daemon()
        b.sock = a.sock
        rc, err = self.run_daemon(b)
        self.assertNotEqual(rc, 0)
        self.assertIn("already served by a running ringqd", err)
        self.assertTrue(a.call({"op": "ping"})["ok"])

    def test_state_dir_in_use(self):
        a = self.daemon().start()
        b = self.daemon(root=None)
        b.state = a.state
        rc, err = self.run_daemon(b)
        self.assertNotEqual(rc, 0)
        self.assertIn("in use by another ringqd", err)

    def test_stale_socket_is_replaced(self):
        d = self.daemon()
        s = socket.socket(socket.AF_UNIX)
        s.bind(d.sock)
        s.close()
        d.start()
        self.assertTrue(d.call({"op": "ping"})["ok"])
        self.assertIn("removing stale socket", d.logtext())

    def test_help_and_version(self):
        p = subprocess.run([RINGQD, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        for flag in ("--state-dir", "--socket", "--workers", "--high-water", "--low-water", "--max-clients",
                     "--max-request", "--default-timeout", "--kill-grace", "--max-output", "--retention",
                     "--max-finished", "--durability", "--config"):
            self.assertIn(flag, p.stdout)
        p = subprocess.run([RINGQD, "--version"], capture_output=True, text=True)
        self.assertRegex(p.stdout, r"^ringqd \d+\.\d+\.\d+")


if __name__ == "__main__":
    unittest.main()
