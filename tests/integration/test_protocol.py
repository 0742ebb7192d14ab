"""The wire protocol: errors keep the connection usable, pipelining keeps
order and tags, wait does not hold up others, stats and the schema."""
import json
import os
import sqlite3
import subprocess
import threading
import time
import unittest

from harness import SLOW, DaemonTest, Client, wait_for


class Errors(DaemonTest):
    def test_each_error_and_the_connection_survives(self):
        c = self.d.client()
        cases = [
            (b'{"op": "ping"', "bad_request", None),
            (b'[1,2]', "bad_request", None),
            (b'{"op":"submit"}', "bad_request", "argv"),
            (b'{"op":"submit","argv":[]}', "bad_request", "argv"),
            (b'{"op":"submit","argv":["x"],"cwd":"tmp"}', "bad_request", "cwd"),
            (b'{"op":"submit","argv":["x"],"priority":1001}', "bad_request", "priority"),
            (b'{"op":"submit","argv":["x"],"delay_ms":-1}', "bad_request", "delay_ms"),
            (b'{"op":"submit","argv":["x"],"delay_ms":1,"run_at":5}', "bad_request", "run_at"),
            (b'{"op":"submit","argv":["x"],"timout_ms":5}', "bad_request", None),
            (b'{"op":"submit","argv":["a\\u0000b"]}', "bad_request", None),
            (b'{"op":"submit","argv":["x"],"env":{"A=B":"c"}}', "bad_request", "env"),
            (b'{"op":"frobnicate"}', "bad_request", "op"),
            (b'{"op":"status"}', "bad_request", "id"),
            (b'{"op":"status","id":"7"}', "bad_request", "id"),
            (b'{"op":"status","id":123456789}', "not_found", "id"),
            (b'{"op":"list","state":"done"}', "bad_request", "state"),
            (b'{"op":"list","limit":1001}', "bad_request", "limit"),
            (b'{"op":"ping","op":"ping"}', "bad_request", None),
            (b'\xff\xfe{}', "bad_request", None),
        ]
        for line, code, field in cases:
            c.send_raw(line + b"\n")
            r = c.recv()
            self.assertEqual(r["ok"], False, line)
            self.assertEqual(r["error"], code, line)
            self.assertEqual(r.get("field"), field, line)
            self.assertTrue(r["message"], line)
        self.assertTrue(c.call({"op": "ping"})["ok"])

    def test_error_quoting_cut_utf8_still_answers(self):
        """An error message that quotes the client's bytes, cut inside a
        UTF-8 character, is still valid JSON: every line gets its reply
        and the pipelined submit before it keeps its id."""
        c = self.d.client()
        c.send_raw(b'{"op":"submit","argv":["true"]}\n'
                   b'{"op":"ping","tag":"\\u0\xc3\xa9"}\n'
                   b'{"op":"ping","' + b"a" * 63 + b'\xc3\xa9":1}\n')
        first = c.recv()
        self.assertTrue(first["ok"] and first["id"] > 0, first)
        for _ in range(2):
            r = c.recv()
            self.assertEqual(r["error"], "bad_request", r)
        self.assertTrue(c.call({"op": "ping"})["ok"])

    def test_tag_echoed_even_on_error(self):
        c = self.d.client()
        self.assertEqual(c.call({"op": "ping", "tag": {"x": [1, 2]}})["tag"], {"x": [1, 2]})
        # A submit's answer is printed without a tree: the tag still
        # comes back exactly, quotes and escapes included.
        tag = {"q": ['a"b\\c', "\u00e9\n", None, 1.5]}
        r = c.call({"op": "submit", "argv": ["true"], "tag": tag})
        self.assertEqual((r["ok"], r["tag"], sorted(r)), (True, tag, ["id", "ok", "tag"]))
        r = c.call({"op": "nope", "tag": "t1"})
        self.assertEqual((r["error"], r["tag"]), ("bad_request", "t1"))

    def test_crlf_and_blank_lines(self):
        c = self.d.client()
        c.send_raw(b'\n\r\n{"op":"ping","tag":1}\r\n')
        self.assertEqual(c.recv()["tag"], 1)


class Pipelining(DaemonTest):
    def test_replies_in_order(self):
        c = self.d.client()
        lines = []
        for i in range(200):
            if i % 3 == 0:
                lines.append({"op": "submit", "argv": ["true"], "tag": i})
            elif i % 3 == 1:
                lines.append({"op": "ping", "tag": i})
            else:
                lines.append({"op": "status", "id": 1, "tag": i})
        c.send_raw("".join(json.dumps(l) + "\n" for l in lines).encode())
        tags = [c.recv()["tag"] for _ in lines]
        self.assertEqual(tags, list(range(200)))

    def test_a_connection_reads_its_own_writes(self):
        c = self.d.client()
        jid = c.call({"op": "submit", "argv": ["true"], "delay_ms": 3600000})["id"]
        # Pipelined: the list after a submit, and the status after a
        # cancel, see what the writes before them did.
        c.send_raw(b'{"op":"submit","argv":["true"],"delay_ms":3600000,"tag":"s"}\n'
                   b'{"op":"list","state":"queued","tag":"l"}\n'
                   b'{"op":"cancel","id":%d,"tag":"c"}\n'
                   b'{"op":"status","id":%d,"tag":"st"}\n' % (jid, jid))
        s, l, cancel, st = (c.recv() for _ in range(4))
        self.assertEqual([s["tag"], l["tag"], cancel["tag"], st["tag"]], ["s", "l", "c", "st"])
        self.assertIn(s["id"], [j["id"] for j in l["jobs"]])
        self.assertEqual(st["job"]["state"], "canceled")

    def test_replies_show_the_state_each_op_left(self):
        """A cancel and a retry of one job in one group commit: the cancel
        reply and the wait it ends say canceled, not the retry's queued."""
        jid = self.d.submit(["true"], delay_ms=3600000)
        waiter = self.d.client()
        waiter.send({"op": "wait", "id": jid})
        time.sleep(0.2)
        a, b = self.d.client(), self.d.client()
        a.send({"op": "cancel", "id": jid})
        b.send({"op": "retry", "id": jid})
        ra, rb = a.recv(), b.recv()
        self.assertEqual(ra["job"]["state"], "canceled")
        self.assertIn(rb.get("job", {}).get("state", rb.get("error")), ("queued", "invalid_state"))
        self.assertEqual(waiter.recv()["job"]["state"], "canceled")
        self.d.call({"op": "cancel", "id": jid})

    def test_wait_does_not_block_other_connections(self):
        jid = self.d.submit(["sleep", "2"])
        waiter = self.d.client()
        waiter.send({"op": "wait", "id": jid})
        t0 = time.monotonic()
        for _ in range(20):
            self.assertTrue(self.d.call({"op": "ping"})["ok"])
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertEqual(waiter.recv()["job"]["state"], "succeeded")

    def test_wait_timeout(self):
        jid = self.d.submit(["sleep", "5"])
        r = self.d.call({"op": "wait", "id": jid, "timeout_ms": 200})
        self.assertEqual(r["error"], "timeout")
        self.d.call({"op": "cancel", "id": jid})

    def test_client_vanishes_mid_wait(self):
        jid = self.d.submit(["sleep", "1"])
        for _ in range(10):
            c = self.d.client()
            c.send({"op": "wait", "id": jid})
            c.close()
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        wait_for(lambda: self.d.stats()["connections"] == 1, what="connections closed")


class Store(DaemonTest):
    def test_schema_is_the_spec(self):
        self.d.wait_job(self.d.submit(["true"]))
        db = self.d.db()
        cols = [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
        self.assertEqual(cols, ["id", "queue", "state", "priority", "argv", "env", "cwd", "owner_uid", "owner_gid",
                                "idem_key", "submitted_at", "run_at", "started_at", "finished_at", "attempts",
                                "max_attempts", "timeout_ms", "backoff_ms", "exit_code", "signal", "reason", "pid",
                                # schema 2
                                "owner_groups", "umask", "cpu_ms", "max_rss_kb",
                                # schema 3
                                "queued_seq",
                                # schema 4
                                "interruptions"])
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 5)
        self.assertEqual([r[1] for r in db.execute("PRAGMA table_info(job_deps)")], ["job_id", "after_id"])
        self.assertEqual([r[1] for r in db.execute("PRAGMA table_info(queues)")][:2], ["name", "paused"])
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(db.execute("SELECT queue, state, jobs FROM queue_summary").fetchall(),
                         [("default", "succeeded", 1)])
        self.assertEqual(json.loads(db.execute("SELECT argv FROM jobs").fetchone()[0]), ["true"])

    def test_sqlite3_shell_reads_while_running(self):
        for _ in range(3):
            self.d.submit(["sleep", "30"])
        wait_for(lambda: self.d.stats()["running"] == 2, what="2 running")
        out = subprocess.run(["sqlite3", "-readonly", os.path.join(self.d.state, "queue.db"),
                              "select * from queue_summary order by state"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), ["default|queued|1", "default|running|2"])

    def test_list_filters_and_pages(self):
        ids = [self.d.submit(["true"], queue="q%d" % (i % 2)) for i in range(6)]
        for i in ids:
            self.d.wait_job(i)
        r = self.d.call({"op": "list", "queue": "q1"})
        self.assertEqual([j["id"] for j in r["jobs"]], ids[1::2])
        r = self.d.call({"op": "list", "state": "succeeded", "limit": 2, "after_id": ids[1]})
        self.assertEqual([j["id"] for j in r["jobs"]], ids[2:4])
        self.assertEqual(self.d.call({"op": "list", "state": "failed"})["jobs"], [])

    def test_stats_shape(self):
        self.d.wait_job(self.d.submit(["true"]))
        s = self.d.stats()
        for k in ("queued", "running", "workers", "high_water", "low_water", "accepting", "connections",
                  "uptime_ms"):
            self.assertIn(k, s)
        for k in ("accepted", "rejected_full", "rejected_other", "started", "succeeded", "failed", "timed_out",
                  "canceled", "retried"):
            self.assertIn(k, s["counters"])
        for k in ("commit", "queue_wait", "run"):
            self.assertLessEqual({"p50", "p99", "max", "samples", "count", "sum_us"}, set(s["latency_ms"][k]))
        self.assertEqual((s["counters"]["accepted"], s["counters"]["succeeded"]), (1, 1))
        self.assertEqual((s["workers"], s["high_water"], s["low_water"]), (2, 10000, 9000))

    def test_the_steps_of_a_job_are_timed(self):
        # Every step of each job is timed, and a slot refilled from the
        # backlog reports how long it stood idle.
        ids = [self.d.submit(["sh", "-c", "sleep 0.3; echo x"]) for _ in range(2)]
        ids += [self.d.submit(["sh", "-c", "echo x"]) for _ in range(4)]
        for jid in ids:
            self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        s = self.d.stats()
        path = s["job_path_ms"]
        self.assertEqual(sorted(path), sorted(["launch", "submit_commit", "start_commit", "exec", "run", "drain",
                                               "end_commit", "slot_idle"]))
        for k in ("launch", "start_commit", "exec", "run", "drain", "end_commit"):
            self.assertEqual(path[k]["samples"], 6, k)
            self.assertGreater(path[k]["max"], 0, k)
            self.assertLessEqual(path[k]["p50"], path[k]["max"], k)
        # The first two found a slot free: each was taken as it was
        # submitted, and waited at its barrier only for its submit's commit.
        self.assertEqual(path["submit_commit"]["samples"], 2)
        # 4 jobs queued behind 2 slow ones on 2 slots: each started in a
        # slot an end had just freed.
        self.assertGreaterEqual(path["slot_idle"]["samples"], 4)
        self.assertGreater(path["slot_idle"]["p50"], 0)
        # durability=full: starts and ends commit without an fsync each and
        # the WAL is synced after them.
        self.assertGreaterEqual(s["counters"]["wal_syncs"], 1)


class SharedInserts(DaemonTest):
    """Plain submits (no key, no after) that reach the store together share
    INSERTs of up to 32 rows, each row numbering its own parameters: every
    column of every row must be what its own submit asked for."""
    daemon_kwargs = {"args": ["--busy-timeout", "60s"]}

    def test_each_row_of_a_shared_insert_is_its_own(self):
        self.d.wait_job(self.d.submit(["true"]))  # the database exists
        lock = sqlite3.connect(os.path.join(self.d.state, "queue.db"), isolation_level=None, timeout=10)
        self.addCleanup(lock.close)
        lock.execute("BEGIN IMMEDIATE")
        commits = self.d.stats()["counters"]["commits"]
        # 32 + 8 + 4 + 2 + 1, then a keyed one, then 3 more: every way a
        # run is cut, and a run broken by a submit that is not plain.
        c = self.d.client()
        self.addCleanup(c.close)
        sent = []
        for i in range(51):
            req = {"op": "submit", "argv": ["echo", "job %d" % i], "cwd": "/tmp" if i % 2 else "/",
                   "queue": "q%d" % (i % 3), "priority": i % 7 - 3, "max_attempts": 1 + i % 4,
                   "timeout_ms": 1000 + i, "backoff_ms": 10 * i, "delay_ms": 3600000 + 1000 * i,
                   "env": {"I": str(i)}, "umask": i % 8}
            if i == 47:
                req["key"] = "k47"
            sent.append(req)
            c.send(req)
        time.sleep(0.3 * SLOW)  # every line read: they wait for the lock together
        lock.execute("COMMIT")
        ids = []
        for _ in sent:
            r = c.recv()
            self.assertTrue(r["ok"], r)
            ids.append(r["id"])
        self.assertEqual(len(set(ids)), len(sent))
        self.assertLessEqual(self.d.stats()["counters"]["commits"] - commits, 3, "the submits were not one batch")
        db = self.d.db()
        rows = {r[0]: r[1:] for r in db.execute(
            "SELECT id, argv, env, cwd, queue, priority, max_attempts, timeout_ms, backoff_ms, run_at - submitted_at,"
            " umask, state, idem_key, attempts FROM jobs WHERE id IN (%s)" % ",".join(map(str, ids)))}
        db.close()
        for jid, req in zip(ids, sent):
            self.assertEqual(rows[jid], (json.dumps(req["argv"], separators=(",", ":")),
                                         json.dumps(req["env"], separators=(",", ":")), req["cwd"], req["queue"],
                                         req["priority"], req["max_attempts"], req["timeout_ms"], req["backoff_ms"],
                                         req["delay_ms"], req["umask"], "queued", req.get("key"), 0), jid)

    def test_a_row_refused_fails_only_its_own_submit(self):
        first = self.d.submit(["true"], delay_ms=3600000)
        lock = sqlite3.connect(os.path.join(self.d.state, "queue.db"), isolation_level=None, timeout=10)
        self.addCleanup(lock.close)
        lock.execute("BEGIN IMMEDIATE")
        # A row written behind ringqd's back takes an id it will give:
        # the one submit given that id is refused, the four beside it in
        # the same INSERTs are not.
        taken = first + 3
        lock.execute("INSERT INTO jobs (id, queue, state, argv, cwd, owner_uid, owner_gid, submitted_at, run_at)"
                     " VALUES (?, 'default', 'queued', '[\"by-hand\"]', '/', 0, 0, 0, 0)", (taken,))
        c = self.d.client()
        self.addCleanup(c.close)
        for i in range(5):
            c.send({"op": "submit", "argv": ["echo", str(i)], "delay_ms": 3600000})
        time.sleep(0.3 * SLOW)
        lock.execute("COMMIT")
        replies = [c.recv() for _ in range(5)]
        self.assertEqual([r["ok"] for r in replies], [True, True, False, True, True], replies)
        self.assertEqual(replies[2]["error"], "storage_error")
        self.assertEqual([r["id"] for r in replies if r["ok"]], [first + 1, first + 2, first + 4, first + 5])
        db = self.d.db()
        self.assertEqual(db.execute("SELECT argv FROM jobs WHERE id = ?", (taken,)).fetchone()[0], '["by-hand"]')
        for r, i in zip(replies, range(5)):
            if r["ok"]:
                self.assertEqual(json.loads(db.execute("SELECT argv FROM jobs WHERE id = ?", (r["id"],)).fetchone()[0]),
                                 ["echo", str(i)])
        db.close()


if __name__ == "__main__":
    unittest.main()
