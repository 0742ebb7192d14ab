"""Every bound at its edge: high/low water, max_clients, pipelining,
unread replies, idle connections, request size, a locked database,
output size, job timeouts, pruning, and what the operator sees."""
import json
import os
import socket
import sqlite3
import threading
import time
import unittest

from harness import Client, Daemon, DaemonTest, procs_in_session, wait_for


class HighWater(DaemonTest):
    # As root, but about the mark every other user meets: no root reserve.
    daemon_kwargs = {"workers": 1, "args": ["--high-water", "5", "--low-water", "2", "--root-reserve-jobs", "0"]}

    def test_reject_at_high_water_accept_at_low_water(self):
        c = self.d.client()
        ids = [c.call({"op": "submit", "argv": ["true"], "delay_ms": 3600000})["id"] for _ in range(5)]
        commits = self.d.stats()["counters"]["commits"]
        for _ in range(20):
            r = c.call({"op": "submit", "argv": ["true"]})
            self.assertEqual(r["error"], "queue_full")
            self.assertIsInstance(r["retry_after_ms"], int)
            # Every queued job is delayed an hour: none can leave before.
            self.assertGreater(r["retry_after_ms"], 3500000, r)
        s = self.d.stats()
        self.assertEqual((s["accepting"], s["queued"], s["state"]), (False, 5, "rejecting"))
        self.assertEqual(s["counters"]["rejected_full"], 20)
        # Rejecting wrote nothing: no commit happened.
        self.assertEqual(s["counters"]["commits"], commits)
        wait_for(lambda: self.d.notify.statuses()[-1].startswith("rejecting; queued 5/5"), what="rejecting status")
        self.assertIn("5 jobs queued", r["message"])
        tagged = c.call({"op": "submit", "argv": ["true"], "tag": "t1"})
        self.assertEqual((tagged["error"], tagged["tag"]), ("queue_full", "t1"))
        # Hysteresis: 4 and 3 queued are still above low water, and the
        # reply says how many are queued now.
        for n, jid in zip((4, 3), ids[:2]):
            self.assertEqual(c.call({"op": "cancel", "id": jid})["job"]["state"], "canceled")
            r = c.call({"op": "submit", "argv": ["true"]})
            self.assertEqual(r["error"], "queue_full")
            self.assertIn("%d jobs queued" % n, r["message"])
            self.assertNotIn("tag", r)
        self.assertEqual(c.call({"op": "cancel", "id": ids[2]})["job"]["state"], "canceled")
        r = c.call({"op": "submit", "argv": ["true"], "delay_ms": 3600000})
        self.assertTrue(r["ok"], r)
        self.assertTrue(self.d.stats()["accepting"])
        wait_for(lambda: self.d.notify.statuses()[-1].startswith("accepting; queued 3/5"), what="accepting status")


class Connections(DaemonTest):
    daemon_kwargs = {"args": ["--root-reserve-clients", "0", "--max-clients", "3", "--idle-timeout", "700ms", "--max-request", "1024",
                              "--max-reply-buffer", "4096"]}

    def test_max_clients(self):
        held = [self.d.client() for _ in range(3)]
        for c in held:
            self.assertTrue(c.call({"op": "ping"})["ok"])
        extra = Client(self.d.sock)
        r = json.loads(extra.recv_line())
        self.assertEqual(r["error"], "busy")
        self.assertIsNone(extra.recv_line())
        self.assertEqual(held[0].call({"op": "stats"})["counters"]["clients_refused"], 1)
        held[1].close()
        wait_for(lambda: held[0].call({"op": "stats"})["connections"] == 2, what="a free place")
        self.assertTrue(self.d.call({"op": "ping"})["ok"])

    def test_slow_reader_is_closed(self):
        for _ in range(3):
            self.d.submit(["true"], env={"PAD": "x" * 800})
        c = self.d.client()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # Hundreds of KiB of replies that nobody reads.
        req = b'{"op":"list"}\n'
        try:
            for _ in range(2000):
                c.send_raw(req)
        except OSError:
            pass
        wait_for(lambda: self.d.stats()["counters"]["slow_readers_closed"] == 1, what="slow reader closed")
        got = b""
        try:
            while True:
                chunk = c.sock.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        self.assertLess(len(got), 2000 * 3 * 200)

    def test_idle_connection_closed_busy_one_kept(self):
        jid = self.d.submit(["sleep", "1.5"])
        waiting = self.d.client()
        waiting.send({"op": "wait", "id": jid})
        t0 = time.monotonic()
        half = self.d.client()
        half.send_raw(b'{"op":"pi')
        self.assertIsNone(half.recv_line())
        # idle_timeout is 700ms; the half-sent request did not count.
        self.assertGreaterEqual(time.monotonic() - t0, 0.6)
        self.assertEqual(waiting.recv()["job"]["state"], "succeeded")
        self.assertGreaterEqual(self.d.stats()["counters"]["idle_closed"], 1)

    def test_request_size_limit(self):
        c = self.d.client()
        base = b'{"op":"ping","tag":""}'
        exact = b'{"op":"ping","tag":"' + b"a" * (1024 - len(base)) + b'"}'
        self.assertEqual(len(exact), 1024)
        c.send_raw(exact + b"\n")
        self.assertTrue(c.recv()["ok"])
        c.send_raw(exact[:-2] + b'a"}\n')
        r = c.recv()
        self.assertEqual(r["error"], "too_large")
        self.assertIsNone(c.recv_line())
        # A line that never ends is cut off the same way.
        c = self.d.client()
        c.send_raw(b"x" * 5000)
        self.assertEqual(c.recv()["error"], "too_large")
        self.assertEqual(self.d.stats()["counters"]["too_large"], 2)

class Pipelines(DaemonTest):
    def test_pipeline_stalls_then_drains(self):
        jid = self.d.submit(["sleep", "1"])
        c = self.d.client()
        # 100 waits stay unanswered until the job ends: past 64 ringqd
        # stops reading, and the ping behind them waits its turn.
        c.send_raw(b"".join(b'{"op":"wait","id":%d,"tag":%d}\n' % (jid, i) for i in range(100)) +
                   b'{"op":"ping","tag":"last"}\n')
        wait_for(lambda: self.d.stats()["counters"]["pipeline_stalls"] >= 1, what="a stall")
        tags = [c.recv()["tag"] for _ in range(101)]
        self.assertEqual(tags, list(range(100)) + ["last"])

    def test_vanishing_clients_cost_nothing(self):
        for i in range(50):
            c = self.d.client()
            c.send_raw(b'{"op":"submit","argv":["tr')
            c.close()
            c = self.d.client()
            c.send({"op": "stats"})
            c.close()
        wait_for(lambda: self.d.stats()["connections"] == 1, what="all closed")
        nfds = lambda: len(os.listdir("/proc/%d/fd" % self.d.pid()))
        time.sleep(0.2)
        fds = nfds()
        for i in range(50):
            c = self.d.client()
            c.send_raw(b'{"op":"ping"}\n{"op":"pi')
            c.close()
        wait_for(lambda: self.d.stats()["connections"] == 1, what="all closed")
        wait_for(lambda: nfds() == fds, what="fds back to %d" % fds)


class LockedDatabase(DaemonTest):
    daemon_kwargs = {"args": ["--busy-timeout", "500ms"]}

    def test_write_lock_bounds_submits_not_the_loop(self):
        jid = self.d.submit(["true"])
        self.d.wait_job(jid)
        running = self.d.submit(["sleep", "1"])
        self.d.wait_state(running, "running")
        db = sqlite3.connect(os.path.join(self.d.state, "queue.db"), isolation_level=None, timeout=5)
        db.execute("BEGIN IMMEDIATE")
        try:
            c = self.d.client()
            t0 = time.monotonic()
            c.send({"op": "submit", "argv": ["true"]})
            # The loop answers others while the submit waits.
            for _ in range(5):
                self.assertTrue(self.d.call({"op": "ping"})["ok"])
                self.assertEqual(self.d.job(jid)["state"], "succeeded")
            r = c.recv()
            took = time.monotonic() - t0
            self.assertEqual(r["error"], "storage_error")
            self.assertGreaterEqual(took, 0.4)
            self.assertLess(took, 5)
        finally:
            db.execute("ROLLBACK")
            db.close()
        # The job that ran meanwhile is recorded once the lock is gone.
        self.assertEqual(self.d.wait_job(running)["state"], "succeeded")
        self.assertTrue(self.d.call({"op": "submit", "argv": ["true"]})["ok"])
        self.assertGreaterEqual(self.d.stats()["counters"]["store_busy"], 1)


class JobLimits(DaemonTest):
    daemon_kwargs = {"args": ["--kill-grace", "300ms"]}

    def test_output_truncated_job_finishes(self):
        jid = self.d.submit(["sh", "-c", "head -c 104857600 /dev/zero; echo done >&2"])
        job = self.d.wait_job(jid, timeout=120)
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual(job["reason"], "exit 0; stdout truncated")
        self.assertEqual(os.path.getsize(job["stdout_path"]), 16 << 20)
        self.assertEqual(self.d.output(jid, "err"), "done\n")
        self.assertEqual(self.d.stats()["counters"]["output_truncated"], 1)

    def test_timeout_kills_the_group(self):
        ready = os.path.join(self.d.root, "ready")
        jid = self.d.submit(["sh", "-c", "trap '' TERM; sleep 300 & touch %s; while :; do sleep 0.05; done" % ready],
                            timeout_ms=500)
        pid = self.d.wait_state(jid, "running")["pid"]
        job = self.d.wait_job(jid)
        self.assertEqual((job["state"], job["reason"]), ("failed", "timeout"))
        self.assertEqual(job["signal"], 9)
        self.assertGreaterEqual(job["finished_at"] - job["started_at"], 500 + 300)
        self.assertEqual(procs_in_session(pid), [])
        c = self.d.stats()["counters"]
        self.assertEqual((c["timed_out"], c["killed"]), (1, 1))

    def test_default_timeout(self):
        self.d.stop()
        self.d.args += ["--default-timeout", "300ms"]
        self.d.start()
        job = self.d.wait_job(self.d.submit(["sleep", "30"]))
        self.assertEqual((job["reason"], job["signal"]), ("timeout", 15))


class Pruning(DaemonTest):
    # One slot, so jobs finish in id order and "oldest finished" is known.
    daemon_kwargs = {"workers": 1, "args": ["--max-finished", "3", "--retention", "2s"]}

    def test_max_finished_then_retention(self):
        ids = [self.d.submit(["echo", str(i)]) for i in range(6)]
        wait_for(lambda: self.d.stats()["counters"]["succeeded"] == 6, what="6 jobs done")
        out = os.path.join(self.d.state, "output")
        wait_for(lambda: self.d.stats()["counters"]["pruned"] == 3, what="3 pruned")
        db = self.d.db()
        self.assertEqual(sorted(r[0] for r in db.execute("select id from jobs")), sorted(ids)[3:])
        for jid in sorted(ids)[:3]:
            self.assertFalse(os.path.exists(os.path.join(out, "%d.out" % jid)))
        self.assertTrue(os.path.exists(os.path.join(out, "%d.out" % ids[-1])))
        # Then retention takes the rest, with no request to prompt it.
        wait_for(lambda: self.d.stats()["counters"]["pruned"] == 6, timeout=10, what="retention")
        self.assertEqual(db.execute("select count(*) from jobs").fetchone()[0], 0)
        self.assertEqual(os.listdir(out), [])
        self.assertEqual(self.d.call({"op": "status", "id": ids[0]})["error"], "not_found")
        # An id is never given twice, even when every row is gone, and
        # after a restart (the database is then all ringqd knows).
        db.close()
        self.d.stop()
        self.d.start()
        self.assertGreater(self.d.submit(["true"]), max(ids))
        # Nor once the newest rows are deleted by hand.
        newest = self.d.submit(["true"])
        self.d.wait_job(newest)
        self.d.stop()
        rw = sqlite3.connect(os.path.join(self.d.state, "queue.db"))
        rw.execute("DELETE FROM jobs")
        rw.commit()
        rw.close()
        self.d.start()
        self.assertGreater(self.d.submit(["true"]), newest)


class WalBound(DaemonTest):
    def test_wal_is_checkpointed(self):
        # 400 commits of one submit each write over 1,600 WAL pages (6 MiB
        # and more); checkpoints keep the file near 1,000 pages (4 MiB).
        c = self.d.client()
        for _ in range(400):
            self.assertTrue(c.call({"op": "submit", "argv": ["true"], "delay_ms": 3600000})["ok"])
        st = self.d.stats()
        wal = os.path.getsize(os.path.join(self.d.state, "queue.db-wal"))
        self.assertLess(wal, 4608 * 1024)
        self.assertEqual(st["wal_bytes"], wal)
        self.assertEqual(st["db_bytes"], os.path.getsize(os.path.join(self.d.state, "queue.db")))


class Watchdog(DaemonTest):
    daemon_kwargs = {"env": {"WATCHDOG_USEC": "400000"}}

    def test_watchdog_pings(self):
        wait_for(lambda: sum(1 for k, v in self.d.notify.fields() if k == "WATCHDOG") >= 3, timeout=5,
                 what="WATCHDOG=1 pings")
        self.assertTrue(self.d.notify.has("WATCHDOG", "1"))


if __name__ == "__main__":
    unittest.main()
