"""Faults: a corrupt, truncated or foreign queue.db is refused and left
untouched; a full disk fails submits with storage_error while ringqd
stays up, and what ran meanwhile is recorded once space returns."""
import errno
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
import unittest

from harness import VALGRIND, Daemon, DaemonTest, old_database


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class BadDatabase(unittest.TestCase):
    def daemon(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        os.makedirs(d.state)
        return d

    def refused(self, d, expect):
        db = os.path.join(d.state, "queue.db")
        before = digest(db)
        p = subprocess.run(d.command(), capture_output=True, text=True, timeout=30 * (10 if VALGRIND else 1))
        self.assertNotEqual(p.returncode, 0)
        lines = [l for l in p.stderr.splitlines() if not l.startswith("==")]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn(expect, lines[0])
        self.assertEqual(digest(db), before, "ringqd changed the file it refused")
        self.assertFalse(os.path.exists(d.sock))

    def real_db(self, d, jobs=20):
        d.start()
        for _ in range(jobs):
            d.submit(["true"], env={"PAD": "x" * 2000})
        d.stop()

    def test_garbage(self):
        d = self.daemon()
        with open(os.path.join(d.state, "queue.db"), "wb") as f:
            f.write(os.urandom(8192))
        self.refused(d, "not an SQLite database; refusing to touch it")

    def test_truncated(self):
        d = self.daemon()
        self.real_db(d)
        db = os.path.join(d.state, "queue.db")
        size = os.path.getsize(db)
        os.truncate(db, size // 2)
        self.refused(d, "truncated")

    def test_newer_schema(self):
        d = self.daemon()
        self.real_db(d, jobs=1)
        c = sqlite3.connect(os.path.join(d.state, "queue.db"))
        c.execute("PRAGMA user_version = 6")
        c.commit()
        c.close()
        self.refused(d, "schema version 6 is newer than this ringqd understands (5); refusing to touch it")

    def test_upgrade_that_cannot_copy_a_column_an_operator_added(self):
        d = self.daemon()
        c = old_database(os.path.join(d.state, "queue.db"), 3)
        c.execute("ALTER TABLE jobs ADD COLUMN note TEXT")
        c.commit()
        c.close()
        self.refused(d, "table jobs_v5 has 28 columns but 29 values were supplied; the upgrade of the schema "
                        "from version 3 to 5 was rolled back, the database is as it was")

    def test_foreign_database(self):
        d = self.daemon()
        c = sqlite3.connect(os.path.join(d.state, "queue.db"))
        c.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount)")
        c.commit()
        c.close()
        self.refused(d, "not a ringq database")


@unittest.skipUnless(os.geteuid() == 0, "mounts a small tmpfs")
class UpgradeOnAFullDisk(unittest.TestCase):
    """The upgrade to schema 5 copies the jobs table. Without the room
    for the copy ringqd says so and leaves the database as it was; with
    room, the same database is upgraded and nothing is lost."""

    def test_upgrade_needs_room_and_loses_nothing(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        os.makedirs(d.state)
        made = os.path.join(d.root, "made.db")
        c = old_database(made, 3)
        # About 2.5 MiB of finished jobs (too recent to be pruned): the
        # copy does not fit beside them.
        now = int(time.time() * 1000)
        c.executemany("INSERT INTO jobs (id, queue, state, argv, env, cwd, owner_uid, owner_gid, submitted_at,"
                      " run_at, finished_at, exit_code, reason) VALUES (?, 'default', 'succeeded', '[\"true\"]',"
                      " ?, '/', 0, 0, ?, ?, ?, 0, 'exit 0')",
                      [(i, json.dumps({"PAD": "x" * 2000}), now, now, now) for i in range(10, 1010)])
        c.commit()
        rows = c.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        c.close()
        # Room for the database and half of it again, not for its copy.
        size = os.path.getsize(made)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % (size * 3 // 2 // 1024), "ringq-test", d.state],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", d.state])
        db = os.path.join(d.state, "queue.db")
        shutil.copyfile(made, db)

        p = subprocess.run(d.command(), capture_output=True, text=True, timeout=60 * (10 if VALGRIND else 1))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("the upgrade of the schema from version 3 to 5 was rolled back, the database is as it was",
                      p.stderr)
        self.assertIn("full", p.stderr)
        self.assertIn("needs about as much free space as the database takes", p.stderr)
        self.assertFalse(os.path.exists(d.sock))
        c = sqlite3.connect(db)
        self.assertEqual(c.execute("PRAGMA user_version").fetchone()[0], 3)
        self.assertEqual(c.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        self.assertEqual(c.execute("SELECT * FROM jobs ORDER BY id").fetchall(), rows)
        c.close()

        subprocess.run(["mount", "-o", "remount,size=%dk" % (size * 4 // 1024), d.state], check=True)
        d.start()
        self.assertIn("schema upgraded from version 3 to 5", d.logtext())
        ro = d.db()
        self.assertEqual(ro.execute("SELECT count(*) FROM jobs").fetchone()[0], len(rows))
        self.assertEqual(ro.execute("SELECT id, env FROM jobs WHERE id >= 10 ORDER BY id").fetchall(),
                         [(r[0], r[5]) for r in rows if r[0] >= 10])
        ro.close()
        self.assertEqual(d.submit(["true"]), 1010)


@unittest.skipUnless(os.geteuid() == 0, "mounts a small tmpfs")
class DiskFull(DaemonTest):
    start_daemon = False

    def setUp(self):
        super().setUp()
        os.makedirs(self.d.state)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "ringq-test", self.d.state], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.d.state])
        self.d.start()
        self.filler = os.path.join(self.d.state, "filler")

    def fill(self):
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)

    def test_full_disk(self):
        running = self.d.submit(["sh", "-c", "sleep 1; echo done"])
        self.d.wait_state(running, "running")
        self.fill()
        # Submits fail (sooner or later the WAL needs a new page), clearly.
        c = self.d.client()
        errors = 0
        for i in range(3000):
            r = c.call({"op": "submit", "argv": ["true"], "env": {"PAD": "y" * 3000}})
            if not r["ok"]:
                self.assertEqual(r["error"], "storage_error", r)
                errors += 1
                if errors >= 3:
                    break
        self.assertGreaterEqual(errors, 3, "the disk never filled")
        # ringqd is up and answers.
        self.assertTrue(c.call({"op": "ping"})["ok"])
        self.assertTrue(c.call({"op": "status", "id": running})["ok"])
        self.assertGreater(self.d.stats()["counters"]["store_errors"], 0)
        time.sleep(1.5)  # the job ends while the disk is full
        os.remove(self.filler)
        job = self.d.wait_job(running)
        # Its output could not be written while the disk was full, and
        # the record says so.
        self.assertEqual((job["state"], job["reason"]), ("succeeded", "exit 0; stdout truncated"))
        self.assertTrue(c.call({"op": "submit", "argv": ["true"]})["ok"])
        db = self.d.db()
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        db.close()
        self.assertEqual(self.d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
