"""ringq as an operator meets it, against the real daemon and CLI:

- list: newest first, a last line that says how many more and the
  command that shows them, --oldest, --before and --after, a DUE column
  for delayed jobs; the list op's order, before_id, owner_uid and
  remaining fields
- owners by name in list, status and top; --user for root, and refused
  for anyone else's jobs (throwaway users, as in test_users.py)
- status in words: owner and group, attempts, the default timeout, the
  backoff, the signal, the previous attempt's reason only while the job
  waits for its next one
- messages: queue_full said once, the low-water rule stated as dispatch
  applies it, no request field in human output, a socket closed to the
  caller explained (its group, and how to get in)
- retry_after_ms at a queue full of delayed jobs: not before the first
  of them is due
- the journal: cancel and retry with who did them, submits at debug
"""
import json
import os
import pwd
import re
import subprocess
import time
import unittest

from harness import RINGQ, SLOW, DaemonTest, wait_for
from test_users import setpriv

TAG = os.getpid() % 100000
# Two users who share nothing, and a group the socket is given.
A, B, SOCKGROUP = "ringqo-a%d" % TAG, "ringqo-b%d" % TAG, "ringqo-sock%d" % TAG
IS_ROOT = os.geteuid() == 0


def setUpModule():
    if not IS_ROOT:
        return
    tearDownModule()
    subprocess.run(["groupadd", "-r", SOCKGROUP], check=True)
    for u in (A, B):
        subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-U", u], check=True)


def tearDownModule():
    if not IS_ROOT:
        return
    for u in (A, B):
        subprocess.run(["userdel", u], capture_output=True)
    for g in (A, B, SOCKGROUP):
        subprocess.run(["groupdel", g], capture_output=True)


def table(out):
    """(header cells, rows as lists of cells, the lines after the table).
    Cells are split on two or more spaces: REASON and COMMAND hold single
    ones."""
    lines = out.splitlines()
    head = re.split(r"\s{2,}", lines[0].strip())
    rows, tail = [], []
    for line in lines[1:]:
        if tail or not re.match(r"^\s*\d+\s\s", line):
            tail.append(line)
        else:
            rows.append(re.split(r"\s{2,}", line.strip()))
    return head, rows, tail


class ListOrder(DaemonTest):
    N = 274

    def setUp(self):
        super().setUp()
        lines = "".join("echo job%d\n" % i for i in range(1, self.N + 1))
        r = self.d.cli("submit", "--delay", "1h", "--batch", "-", input=lines)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.ids = [int(x) for x in r.stdout.split()]
        self.assertEqual(self.ids, list(range(1, self.N + 1)))

    def ids_of(self, out):
        return [int(row[0]) for row in table(out)[1]]

    def follow(self, hint):
        """Run the command a hint line gives, as printed."""
        prefix = "ringq -s %s " % self.d.sock
        cmd = hint.split(": ", 1)[1]
        self.assertTrue(cmd.startswith(prefix), hint)
        return self.run_ok(*cmd[len(prefix):].split())

    def test_newest_first_and_the_way_to_the_rest(self):
        r = self.run_ok("list")
        head, rows, tail = table(r.stdout)
        self.assertEqual(head, ["ID", "STATE", "QUEUE", "USER", "PRIO", "TRIES", "DUE", "REASON", "COMMAND"])
        self.assertEqual(self.ids_of(r.stdout), list(range(274, 174, -1)))
        self.assertEqual(tail, ["174 more: ringq -s %s list --before 175" % self.d.sock])
        # Delayed by an hour: due in 59m and some seconds.
        self.assertRegex(rows[0][6], r"^in 59m\d\ds$")
        self.assertEqual(rows[0][3], "root")

        r = self.follow(tail[0])
        self.assertEqual(self.ids_of(r.stdout), list(range(174, 74, -1)))
        self.assertEqual(table(r.stdout)[2], ["74 more: ringq -s %s list --before 75" % self.d.sock])
        r = self.follow(table(r.stdout)[2][0])
        self.assertEqual(self.ids_of(r.stdout), list(range(74, 0, -1)))
        self.assertEqual(table(r.stdout)[2], [])

        # The filters and the limit go into the hint too.
        r = self.run_ok("list", "--state", "queued", "-q", "default", "-n", "10")
        self.assertEqual(self.ids_of(r.stdout), list(range(274, 264, -1)))
        self.assertEqual(table(r.stdout)[2], ["264 more: ringq -s %s list --state queued -q default -n 10 --before 265"
                                              % self.d.sock])
        r = self.run_ok("list", "-n", "1000")
        self.assertEqual(self.ids_of(r.stdout), list(range(274, 0, -1)))
        self.assertEqual(table(r.stdout)[2], [])

    def test_oldest_first(self):
        r = self.run_ok("list", "--oldest")
        self.assertEqual(self.ids_of(r.stdout), list(range(1, 101)))
        tail = table(r.stdout)[2]
        self.assertEqual(tail, ["174 more: ringq -s %s list --after 100" % self.d.sock])
        r = self.follow(tail[0])
        self.assertEqual(self.ids_of(r.stdout), list(range(101, 201)))
        r = self.run_ok("list", "--after", "200")
        self.assertEqual(self.ids_of(r.stdout), list(range(201, 275)))
        self.assertEqual(table(r.stdout)[2], [])
        # A window, either way round.
        r = self.run_ok("list", "--after", "10", "--before", "15")
        self.assertEqual(self.ids_of(r.stdout), [11, 12, 13, 14])
        r = self.run_ok("list", "--before", "15", "-n", "3")
        self.assertEqual(self.ids_of(r.stdout), [14, 13, 12])
        self.assertEqual(table(r.stdout)[2], ["11 more: ringq -s %s list -n 3 --before 12" % self.d.sock])

    def test_the_list_op(self):
        r = self.d.call({"op": "list", "order": "desc", "limit": 100})
        self.assertEqual([j["id"] for j in r["jobs"]], list(range(274, 174, -1)))
        self.assertEqual((r["more"], r["next_before_id"], r["remaining"], r["remaining_exact"]),
                         (True, 175, 174, True))
        r = self.d.call({"op": "list", "order": "desc", "before_id": 3, "limit": 100})
        self.assertEqual([j["id"] for j in r["jobs"]], [2, 1])
        self.assertEqual(r["more"], False)
        self.assertNotIn("remaining", r)
        # Ascending stays the default; a full page now says whether it was
        # the last.
        r = self.d.call({"op": "list", "limit": 74, "after_id": 200})
        self.assertEqual([j["id"] for j in r["jobs"]], list(range(201, 275)))
        self.assertEqual(r["more"], False)
        r = self.d.call({"op": "list", "limit": 2})
        self.assertEqual((r["more"], r["next_after_id"], r["remaining"]), (True, 2, 272))
        for bad in ({"order": "up"}, {"before_id": 0}, {"owner_uid": -1}, {"owner_uid": "root"}):
            r = self.d.call(dict({"op": "list"}, **bad))
            self.assertEqual((r["error"], r["field"]), ("bad_request", list(bad)[0]), r)


class ListCount(DaemonTest):
    def test_past_a_thousand_it_says_over(self):
        r = self.d.cli("submit", "--delay", "1h", "--batch", "-", input="true\n" * 1102)
        self.assertEqual(r.returncode, 0, r.stderr)
        tail = table(self.run_ok("list").stdout)[2]
        self.assertEqual(tail, ["over 1000 more: ringq -s %s list --before 1003" % self.d.sock])
        r = self.d.call({"op": "list", "order": "desc", "limit": 102})
        self.assertEqual((r["remaining"], r["remaining_exact"]), (1000, True))
        r = self.d.call({"op": "list", "order": "desc", "limit": 100})
        self.assertEqual((r["remaining"], r["remaining_exact"]), (1000, False))


class StatusWords(DaemonTest):
    def status(self, jid):
        return dict(re.match(r"^([a-z ]+):\s+(.*)$", l).groups() for l in self.run_ok("status", str(jid)).stdout.splitlines())

    def test_every_field_in_words(self):
        jid = self.d.submit(["sleep", "30"], max_attempts=3, backoff_ms=2000, key="k1")
        self.d.wait_state(jid, "running")
        st = self.status(jid)
        self.assertEqual(st["owner"], "root (0)")
        self.assertEqual(st["group"], "root (0)")
        self.assertEqual(st["attempts"], "1 of 3")
        self.assertEqual(st["timeout"], "1h (default)")
        self.assertEqual(st["backoff"], "2s, doubling per attempt, at most 1h (with 20% jitter)")
        self.assertEqual(st["key"], "k1")
        self.assertEqual(st["pid"], str(self.d.job(jid)["pid"]))
        for raw in ("backoff_ms", "default_timeout_ms", "owner_uid"):
            self.assertNotIn(raw, st)
        self.run_ok("cancel", str(jid))
        st = self.status(jid)
        self.assertEqual(st["signal"], "15 (SIGTERM)")
        self.assertNotIn("pid", st)

        jid = self.d.submit(["true"], timeout_ms=90000)
        self.d.wait_job(jid)
        st = self.status(jid)
        self.assertEqual((st["timeout"], st["attempts"], st["reason"]), ("1m30s", "1 of 1", "exit 0"))
        # One attempt: no backoff to speak of, no key, no pid.
        for absent in ("backoff", "key", "pid"):
            self.assertNotIn(absent, st)

    def test_a_retried_job_shows_no_stale_reason(self):
        jid = self.d.submit(["sh", "-c", 'if [ "$RINGQ_ATTEMPT" = 1 ]; then exit 3; fi; exec sleep 30'],
                            max_attempts=2, backoff_ms=3000)
        # Between the attempts: the last one's reason, as such.
        job = wait_for(lambda: (lambda j: j["attempts"] == 1 and j["state"] == "queued" and j)(self.d.job(jid)),
                       what="the first attempt failed")
        self.assertEqual((job["reason"], job["exit_code"]), ("exit 3", 3))
        st = self.status(jid)
        self.assertEqual(st["last attempt"], "exit 3")
        self.assertNotIn("reason", st)
        self.assertRegex(table(self.run_ok("list").stdout)[1][0][6], r"^in \d")
        # Running again: nothing of the attempt before.
        job = wait_for(lambda: (lambda j: j["state"] == "running" and j)(self.d.job(jid)), what="second attempt")
        self.assertEqual(job["attempts"], 2)
        for k in ("reason", "exit_code", "signal", "cpu_ms", "max_rss_kb"):
            self.assertIsNone(job[k], k)
        st = self.status(jid)
        self.assertEqual((st["reason"], st["exit code"]), ("-", "-"))
        self.assertNotIn("last attempt", st)
        row = table(self.run_ok("list").stdout)[1][0]
        self.assertEqual((row[1], row[7]), ("running", "-"))
        self.assertRegex(self.d.logtext(), r"job %d ended: retry scheduled, reason=\"exit 3\"" % jid)
        self.run_ok("cancel", str(jid))


FULL = """high_water = 50
low_water = 45
root_reserve_jobs = 0
"""


class Messages(DaemonTest):
    daemon_kwargs = {"config": FULL}

    def test_queue_full_says_it_once_and_exactly_when_it_takes_again(self):
        t0 = time.time()
        r = self.d.cli("submit", "--delay", "10m", "--batch", "-", input="true\n" * 50)
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = [int(x) for x in r.stdout.split()]
        r = self.d.cli("submit", "--", "true")
        self.assertEqual(r.returncode, 75)
        first = r.stderr.splitlines()[0]
        self.assertEqual(first, "ringq: queue_full: 50 jobs queued (high water 50); "
                                "accepting again once 45 or fewer are queued")
        self.assertNotIn("queue full", r.stderr.lower().replace("queue_full", ""))
        # ringqd's estimate, in words: nothing can leave before the first
        # delayed job is due, ten minutes after it was submitted.
        m = re.search(r"ringqd expects room in about (\d+)m", r.stderr)
        self.assertTrue(m, r.stderr)
        self.assertGreaterEqual(int(m.group(1)), 9)
        reply = self.d.call({"op": "submit", "argv": ["true"]})
        self.assertEqual(reply["error"], "queue_full")
        self.assertGreaterEqual(reply["retry_after_ms"], 600000 - (time.time() - t0) * 1000 - 100)

        # The rule the message states: 46 queued is refused, 45 is taken.
        self.run_ok("cancel", *[str(i) for i in ids[:4]])
        r = self.d.cli("submit", "--", "true")
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("queue_full: 46 jobs queued", r.stderr)
        self.run_ok("cancel", str(ids[4]))
        self.run_ok("submit", "--delay", "10m", "--", "true")

    def test_errors_name_no_request_field(self):
        r = self.d.cli("status", "999999")
        self.assertEqual((r.returncode, r.stderr), (66, "ringq: not_found: job 999999 not found\n"))
        r = self.d.cli("status", "--json", "999999")
        self.assertEqual(json.loads(r.stdout)["field"], "id")
        self.assertNotIn("(field", r.stderr)
        r = self.d.cli("retry", "999999")
        self.assertEqual(r.stderr, "ringq: not_found: job 999999 not found\n")


class Journal(DaemonTest):
    daemon_kwargs = {"args": ["--log-level", "debug"]}

    def test_cancel_and_retry_say_who(self):
        queued = self.d.submit(["true"], delay_ms=3600000)
        running = self.d.submit(["sleep", "30"])
        self.d.wait_state(running, "running")
        self.run_ok("cancel", str(queued), str(running))
        self.run_ok("retry", str(queued))
        log = self.d.logtext()
        self.assertRegex(log, r"job %d submitted by uid 0: queue=\"default\" argv0=\"true\"" % queued)
        self.assertRegex(log, r"job %d canceled by uid 0 \(was queued\): owner=0 queue=\"default\"" % queued)
        self.assertRegex(log, r"job %d canceled by uid 0 \(running: stopping it\)" % running)
        self.assertRegex(log, r"job %d retried by uid 0 \(was canceled\)" % queued)


class JournalAtInfo(DaemonTest):
    def test_submits_are_debug(self):
        jid = self.d.submit(["false"])
        self.d.wait_job(jid)
        self.run_ok("retry", str(jid))
        wait_for(lambda: "job %d retried by uid 0" % jid in self.d.logtext(), what="the retry line")
        self.assertNotIn("submitted by", self.d.logtext())


@unittest.skipUnless(IS_ROOT, "needs root to make users")
class Owners(DaemonTest):
    def setUp(self):
        super().setUp()
        os.chmod(self.d.root, 0o755)
        os.chmod(self.d.sock, 0o666)

    def cli_as(self, user, *args, groups="init"):
        cmd = setpriv(user, groups) + [RINGQ, "-s", self.d.sock] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60 * SLOW, cwd="/")

    def submit_as(self, user, *argv):
        r = self.cli_as(user, "submit", "--", *argv)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout)

    def test_names_and_the_user_filter(self):
        a = self.submit_as(A, "sleep", "30")
        b = self.submit_as(B, "sleep", "30")
        self.d.wait_state(a, "running")
        self.d.wait_state(b, "running")
        uid_b = pwd.getpwnam(B).pw_uid
        rows = table(self.run_ok("list").stdout)[1]
        self.assertEqual({(int(r[0]), r[3]) for r in rows}, {(a, A), (b, B)})
        self.assertEqual([int(r[0]) for r in table(self.run_ok("list", "--user", A).stdout)[1]], [a])
        self.assertEqual([int(r[0]) for r in table(self.run_ok("list", "--user", str(uid_b)).stdout)[1]], [b])
        self.assertRegex(self.run_ok("status", str(a)).stdout,
                         r"(?m)^owner:\s+%s \(%d\)$" % (A, pwd.getpwnam(A).pw_uid))
        frame = self.run_ok("top", "-n", "1").stdout
        self.assertRegex(frame, r"(?m)^\s*ID\s+USER\s+AGE\s+COMMAND")
        self.assertRegex(frame, r"(?m)^\s*%d\s+%s\s" % (a, A))

        # Anyone but root: their own jobs, and no one else's.
        r = self.cli_as(A, "list", "--user", B)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertEqual(r.stderr, "ringq: forbidden: only root may list the jobs of another user (uid %d)\n" % uid_b)
        r = self.cli_as(A, "list", "--user", A)
        self.assertEqual([int(x[0]) for x in table(r.stdout)[1]], [a])
        r = self.cli_as(A, "list")
        self.assertEqual([int(x[0]) for x in table(r.stdout)[1]], [a])
        self.assertEqual(self.cli_as(A, "list", "--user", "no-such-user-here").returncode, 64)
        self.run_ok("cancel", str(a), str(b))

    def test_a_closed_socket_is_explained(self):
        os.chown(self.d.sock, 0, pwd.getpwnam("root").pw_gid)
        os.chmod(self.d.sock, 0o660)
        subprocess.run(["chgrp", SOCKGROUP, self.d.sock], check=True)
        r = self.cli_as(A, "ping")
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertEqual(r.stderr.splitlines(), [
            "ringq: cannot connect to %s: Permission denied" % self.d.sock,
            "ringq: the socket %s is open to group %s only: ask an administrator to add you "
            "('adduser $USER %s'), then log in again" % (self.d.sock, SOCKGROUP, SOCKGROUP)])
        # Added to the group, but still in a session from before.
        subprocess.run(["usermod", "-a", "-G", SOCKGROUP, A], check=True)
        self.addCleanup(subprocess.run, ["gpasswd", "-d", A, SOCKGROUP], capture_output=True)
        r = self.cli_as(A, "ping", groups="clear")
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("open to group %s, which you were added to after you logged in: log in again" % SOCKGROUP,
                      r.stderr)
        self.assertEqual(self.cli_as(A, "ping").returncode, 0)
        os.chmod(self.d.sock, 0o600)
        r = self.cli_as(A, "ping")
        self.assertIn("the socket %s is open to its owner root only" % self.d.sock, r.stderr)


if __name__ == "__main__":
    unittest.main()
