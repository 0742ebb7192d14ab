"""One ringqd shared by users who are hostile to each other (root is
trusted). Each test plays the hostile user for real, with throwaway
users made here (useradd) and the real CLI or raw sockets run as them
(setpriv), against a well-behaved user or root:

- lockout: connections full of waits, then closed; per-user connection
  caps; root's reserve of connections; half-closed clients still answered
- idempotency keys: another user's key is invisible, squatting does not
  work; a database of schema 1 is upgraded in place
- room and fairness: root's reserve above high_water, max_queued_per_user,
  a backlog of one user against a single job of another
- a job owns every process it starts: setsid, double fork and plain
  children end with its timeout, cancel and normal end, with a cgroup per
  job and with the subreaper fallback; its CPU and peak RSS are recorded
- the owner's login limits (limits.d through PAM) and umask
- groups from the connection (a dropped group stays dropped)
- private, immutable output; a listing reveals nothing
- log lines that a request cannot forge
- a job readied at its submit, waiting at its barrier for the commit, is
  out of another user's reach (status, output, wait, cancel, a signal)
"""
import grp
import json
import os
import pwd
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from harness import RINGQ, SLOW, VALGRIND, Daemon, DaemonTest, alive, old_database, proc_stats, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# A (hostile) and B share their primary group, as users of one team do;
# C has its own. A is also in EXTRA, a supplementary group.
# Named per test process: the module may run twice at once (plain and
# under valgrind), and each removes its own users at the end.
TAG = os.getpid() % 100000
SHARED, EXTRA = "ringqu-team%d" % TAG, "ringqu-extra%d" % TAG
A, B, C = "ringqu-a%d" % TAG, "ringqu-b%d" % TAG, "ringqu-c%d" % TAG
IS_ROOT = os.geteuid() == 0


def setUpModule():
    if not IS_ROOT:
        return
    tearDownModule()
    for g in (SHARED, EXTRA):
        subprocess.run(["groupadd", "-r", g], check=True)
    for u in (A, B):
        subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-g", SHARED, u], check=True)
    subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-U", C], check=True)
    subprocess.run(["usermod", "-a", "-G", EXTRA, A], check=True)


def tearDownModule():
    if not IS_ROOT:
        return
    for u in (A, B, C):
        subprocess.run(["userdel", u], capture_output=True)
    for g in (SHARED, EXTRA, C):
        subprocess.run(["groupdel", g], capture_output=True)


def setpriv(user, groups="init", regid=None):
    """The setpriv prefix that runs a command as user."""
    g = ["--init-groups"] if groups == "init" else ["--clear-groups"]
    return ["setpriv", "--reuid", user, "--regid", regid or str(pwd.getpwnam(user).pw_gid)] + g + ["--"]


def v2_cgroup_root():
    """Where cgroup v2 is mounted, if ringqd may make cgroups in it here."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2" and os.access(fields[4], os.W_OK):
                return fields[4]
    return None


HOSTILE = r"""
import json, socket, sys
path, n, req = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    if req:
        s.sendall(req.encode())
    conns.append(s)
# Wait until told, then close every socket at once.
print("ready", flush=True)
sys.stdin.read()
"""


@unittest.skipUnless(IS_ROOT, "needs root to make users")
class UsersTest(DaemonTest):
    def setUp(self):
        super().setUp()
        os.chmod(self.d.root, 0o755)
        if self.d.proc:
            os.chmod(self.d.sock, 0o666)

    def start(self):
        self.d.start()
        os.chmod(self.d.sock, 0o666)

    def cli_as(self, user, *args, groups="init", regid=None, umask=None, check=False):
        cmd = setpriv(user, groups, regid) + [RINGQ, "-s", self.d.sock] + list(args)
        if umask is not None:
            cmd = setpriv(user, groups, regid) + ["sh", "-c", 'umask %s; exec "$@"' % umask, "sh", RINGQ, "-s",
                                                  self.d.sock] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60 * SLOW, cwd="/")
        if check:
            self.assertEqual(r.returncode, 0, "%s: %s" % (args, r.stderr))
        return r

    def submit_as(self, user, *argv, **kw):
        r = self.cli_as(user, "submit", *argv, **kw)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout.split()[0])

    def hold(self, user, n, req=""):
        """n connections of user, each sent req; closed when released."""
        p = subprocess.Popen(setpriv(user) + [sys.executable, "-c", HOSTILE, self.d.sock, str(n), req],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p

    def release(self, p):
        p.stdin.close()
        p.wait(10)

    def log_lines(self):
        return self.d.logtext().splitlines()


class Lockout(UsersTest):
    daemon_kwargs = {"args": ["--max-clients", "8", "--max-pipeline", "4", "--idle-timeout", "1h"]}

    def test_waits_of_a_client_that_closed_free_its_slots_at_once(self):
        jid = self.submit_as(A, "--delay", "365d", "--", "true")
        # The attack: every slot holds waits (more than the pipeline
        # takes, so reading stops too), then the client vanishes.
        waits = "".join(json.dumps({"op": "wait", "id": jid}) + "\n" for _ in range(6))
        p = self.hold(A, 8, waits)
        wait_for(lambda: self.d.stats()["connections"] >= 8 or None, what="8 connections")
        r = self.cli_as(B, "ping")
        self.assertEqual(r.returncode, 75, r.stderr)  # full while they are held
        self.release(p)
        # "At once": the slots are free well before idle_timeout (1 h).
        wait_for(lambda: self.cli_as(B, "ping").returncode == 0, timeout=5, what="B served again")
        s = self.d.stats()
        self.assertLessEqual(s["connections"], 1)
        self.assertEqual(s["counters"]["clients_gone"], 8)
        # Root can act on the job the attack waited on.
        self.assertEqual(self.d.cli("cancel", str(jid)).returncode, 0)

    def test_half_closed_client_gets_every_reply(self):
        jid = self.submit_as(B, "--", "sleep", "0.3")
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(self.d.sock)
        c.sendall((json.dumps({"op": "wait", "id": jid}) + "\n" + json.dumps({"op": "ping"}) + "\n").encode())
        c.shutdown(socket.SHUT_WR)
        c.settimeout(30 * SLOW)
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        c.close()
        replies = [json.loads(line) for line in data.splitlines()]
        self.assertEqual([r["ok"] for r in replies], [True, True])
        self.assertEqual(replies[0]["job"]["state"], "succeeded")


class ConnectionCaps(UsersTest):
    daemon_kwargs = {"args": ["--max-clients", "5", "--max-clients-per-user", "3", "--root-reserve-clients", "2"]}

    def test_one_user_cannot_take_every_connection(self):
        a = self.hold(A, 3)
        r = self.cli_as(A, "ping")
        self.assertEqual(r.returncode, 75)
        self.assertIn("max_clients_per_user", r.stderr)
        # Others still get in; then max_clients holds for them too.
        b = self.hold(B, 2)
        r = self.cli_as(C, "ping")
        self.assertEqual(r.returncode, 75)
        self.assertIn("busy", r.stderr)
        # Root has its reserve on top of max_clients, and only root.
        held = [self.d.client() for _ in range(2)]
        for c in held:
            self.assertTrue(c.call({"op": "ping"})["ok"])
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(self.d.sock)
        self.assertEqual(json.loads(c.recv(4096).split(b"\n")[0])["error"], "busy")
        c.close()
        counters = held[0].call({"op": "stats"})["counters"]
        self.assertEqual(counters["clients_refused_user"], 1)
        self.assertEqual(counters["clients_refused"], 2)
        for c in held:
            c.close()
        self.release(a)
        self.release(b)


class ReadiedAtSubmit(UsersTest):
    """A job readied at its submit waits at its barrier, as its owner,
    for the commit: its id is already given, and predictable. B, hostile,
    can neither cancel, read nor signal A's job in that window."""
    daemon_kwargs = {"workers": 1, "args": ["--busy-timeout", "60s"]}

    def test_another_user_cannot_reach_a_job_at_its_barrier(self):
        first = self.d.submit(["true"])
        self.d.wait_job(first)
        lock = sqlite3.connect(os.path.join(self.d.state, "queue.db"), isolation_level=None, timeout=10)
        self.addCleanup(lock.close)
        lock.execute("BEGIN IMMEDIATE")
        a = subprocess.Popen(setpriv(A) + [RINGQ, "-s", self.d.sock, "submit", "--", "sh", "-c", "echo mine"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        self.addCleanup(lambda: a.poll() is None and a.kill())
        wait_for(lambda: self.d.stats()["running"] == 1, what="A's job at its barrier")
        child = wait_for(lambda: [pid for pid, state, ppid, _, _ in proc_stats()
                                  if ppid == self.d.pid() and state not in ("Z", "X")], what="A's child")[0]
        guess = str(first + 1)
        for args in (["status", guess], ["output", guess], ["wait", "--timeout", "1s", guess]):
            r = self.cli_as(B, *args)
            self.assertNotEqual(r.returncode, 0, "%s as B: %s" % (args, r.stdout))
            self.assertNotIn("mine", r.stdout)
        r = subprocess.run(setpriv(B) + ["kill", "-KILL", str(child)], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0, "B signalled A's job")
        self.assertTrue(alive(child))
        # A cancel is a write: it waits for the lock like A's submit, and
        # reaches the store behind it, to find A's job, not B's.
        cancel = subprocess.Popen(setpriv(B) + [RINGQ, "-s", self.d.sock, "cancel", guess],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        self.addCleanup(lambda: cancel.poll() is None and cancel.kill())
        time.sleep(0.3 * SLOW)
        lock.execute("ROLLBACK")
        _, cerr = cancel.communicate(timeout=30 * SLOW)
        self.assertNotEqual(cancel.returncode, 0, "B canceled A's job")
        self.assertIn("forbidden", cerr)
        out, err = a.communicate(timeout=30 * SLOW)
        self.assertEqual(a.returncode, 0, err)
        self.assertEqual(int(out.split()[0]), first + 1)
        job = self.d.wait_job(first + 1)
        self.assertEqual((job["state"], job["owner_uid"]), ("succeeded", pwd.getpwnam(A).pw_uid))
        self.assertEqual(self.d.output(first + 1), "mine\n")
        # Both jobs were readied at their submit (the first one too).
        self.assertEqual(self.d.stats()["job_path_ms"]["submit_commit"]["samples"], 2)


class Keys(UsersTest):
    def test_another_users_key_is_invisible(self):
        ja = self.submit_as(A, "--key", "report", "--delay", "1h", "--", "true")
        r = self.cli_as(B, "submit", "--json", "--key", "report", "--delay", "1h", "--", "true")
        reply = json.loads(r.stdout)
        self.assertNotEqual(reply["id"], ja)
        self.assertNotIn("duplicate", reply)
        # Within one owner the key still deduplicates.
        r = self.cli_as(B, "submit", "--json", "--key", "report", "--", "true")
        self.assertEqual((json.loads(r.stdout)["id"], json.loads(r.stdout).get("duplicate")), (reply["id"], True))
        r = self.cli_as(A, "submit", "--json", "--key", "report", "--", "true")
        self.assertEqual(json.loads(r.stdout)["id"], ja)

    def test_a_squatted_key_does_not_take_roots_job(self):
        squat = self.submit_as(A, "--key", "nightly-backup", "--delay", "365d", "--", "true")
        r = self.d.cli("submit", "--wait", "--key", "nightly-backup", "--", "echo", "root's backup")
        self.assertEqual(r.returncode, 0, r.stderr)
        jid = int(r.stdout.split()[0])
        self.assertNotEqual(jid, squat)
        self.assertEqual(self.d.output(jid), "root's backup\n")


@unittest.skipUnless(IS_ROOT, "needs root to make users")
class SchemaUpgrade(unittest.TestCase):
    """tests/integration/data/queue-v1.sql is `sqlite3 queue.db .dump` of a
    database that ringqd 0.1.0 (schema 1) made: root's key nightly-backup,
    a user's key shared-key, finished jobs, a job due and one delayed."""

    def test_schema_1_database_is_upgraded_in_place(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        os.makedirs(os.path.join(d.state, "output"))
        db = os.path.join(d.state, "queue.db")
        a = pwd.getpwnam(A)
        c = old_database(db, 1)
        # The user the dump was made with (999) stands for A here.
        c.execute("UPDATE jobs SET owner_uid = ?, owner_gid = ? WHERE owner_uid = 999", (a.pw_uid, a.pw_gid))
        # Job 5 was delayed two hours from when the dump was made: keep it
        # delayed whenever the test runs.
        c.execute("UPDATE jobs SET run_at = ? WHERE id = 5", (int(time.time() * 1000) + 86400000,))
        c.commit()
        c.close()
        # Schema 1 gave output files to their jobs' owners.
        out = os.path.join(d.state, "output", "2.out")
        with open(out, "w") as f:
            f.write("user-done\n")
        os.chown(out, a.pw_uid, a.pw_gid)
        os.chmod(out, 0o640)

        d.start()
        os.chmod(d.sock, 0o666)
        os.chmod(d.root, 0o755)
        self.assertIn("schema upgraded from version 1 to 5", d.logtext())
        ro = d.db()
        self.assertEqual(ro.execute("PRAGMA user_version").fetchone()[0], 5)
        idx = ro.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs_idem'").fetchone()[0]
        self.assertIn("owner_uid, queue, idem_key", idx)
        self.assertEqual(ro.execute("SELECT count(*) FROM jobs").fetchone()[0], 5)
        ro.close()
        st = os.stat(out)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600))
        # The job that was due runs, as its owner, with the owner's groups
        # (schema 1 recorded none).
        job = d.wait_job(4)
        self.assertEqual(job["state"], "succeeded", job)
        groups = {int(g) for g in d.output(4).split("\n")[0].split()}
        self.assertEqual(groups, {a.pw_gid, grp.getgrnam(EXTRA).gr_gid})
        self.assertEqual(d.job(5)["state"], "queued")

        def submit(user, key):
            r = subprocess.run(setpriv(user) + [RINGQ, "-s", d.sock, "submit", "--json", "--key", key, "--", "true"],
                               capture_output=True, text=True, cwd="/")
            return json.loads(r.stdout)
        self.assertEqual(submit(A, "shared-key"), {"ok": True, "id": 2, "duplicate": True})
        self.assertNotEqual(submit(B, "shared-key")["id"], 2)
        r = d.call({"op": "submit", "argv": ["true"], "key": "nightly-backup"})
        self.assertEqual((r["id"], r.get("duplicate")), (1, True))


class Room(UsersTest):
    daemon_kwargs = {"workers": 1, "args": ["--high-water", "10", "--low-water", "5", "--root-reserve-jobs", "3",
                                            "--max-queued-per-user", "8"]}

    def test_root_keeps_room_above_high_water(self):
        for _ in range(8):
            self.submit_as(A, "--delay", "1h", "--", "true")
        r = self.cli_as(A, "submit", "--json", "--delay", "1h", "--", "true")
        self.assertEqual(r.returncode, 75)
        reply = json.loads(r.stdout)
        self.assertEqual((reply["error"], reply["scope"]), ("queue_full", "user"))
        self.assertIn("max_queued_per_user", reply["message"])
        for _ in range(2):
            self.submit_as(B, "--delay", "1h", "--", "true")
        # high_water: everyone else is held now...
        r = self.cli_as(C, "submit", "--json", "--delay", "1h", "--", "true")
        self.assertEqual((r.returncode, json.loads(r.stdout)["error"]), (75, "queue_full"))
        self.assertNotIn("scope", json.loads(r.stdout))
        # ...but root may add its reserve.
        for _ in range(3):
            self.d.submit(["true"], delay_ms=3600000)
        r = self.d.call({"op": "submit", "argv": ["true"]})
        self.assertEqual(r["error"], "queue_full")
        self.assertIn("reserve", r["message"])
        c = self.d.stats()["counters"]
        self.assertEqual((c["rejected_user"], c["rejected_full"]), (1, 2))


class Fairness(UsersTest):
    daemon_kwargs = {"workers": 1}

    def backlog_against_one(self):
        # A's backlog, one connection, then B's single job.
        lines = "".join("sleep 0.5\n" for _ in range(12))
        r = subprocess.run(setpriv(A) + [RINGQ, "-s", self.d.sock, "submit", "--batch", "-"], input=lines,
                           capture_output=True, text=True, cwd="/")
        self.assertEqual(r.returncode, 0, r.stderr)
        backlog = [int(x) for x in r.stdout.split()]
        wait_for(lambda: self.d.job(backlog[0])["state"] == "running", what="A's first job running")
        single = self.submit_as(B, "--", "true")
        self.d.wait_job(single, timeout=60)
        for jid in backlog:
            self.d.wait_job(jid, timeout=60)
        jobs = sorted((self.d.job(j) for j in backlog + [single]), key=lambda j: j["started_at"])
        return [j["id"] for j in jobs].index(single)

    def test_a_single_job_is_not_stuck_behind_a_backlog(self):
        self.assertEqual(self.backlog_against_one(), 1)

    def test_fair_share_off_is_the_global_order(self):
        self.d.stop()
        self.d.args += ["--fair-share", "off"]
        self.start()
        self.assertEqual(self.backlog_against_one(), 12)


class Escapes(UsersTest):
    """With the fallback: ringqd and each job's main process are child
    subreapers (no delegated cgroup on this host)."""

    def escapee(self):
        path = os.path.join(self.d.root, "escapee-%d-%s" % (os.getpid(), self.id().split(".")[-1]))
        if not os.path.exists(path):
            shutil.copy("/bin/sleep", path)
            os.chmod(path, 0o755)
        return path

    def live(self, path):
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X") and os.readlink("/proc/%s/exe" % pid) == path:
                    out.append(int(pid))
            except OSError:
                continue
        return out

    def escape_script(self, tail):
        e = self.escapee()
        # A daemon that left the session, an orphan of a double fork,
        # and a plain child; then the job goes on (or ends) as told.
        return "setsid -f %s 300; (%s 301 &); %s 302 & %s" % (e, e, e, tail)

    def check_none_left(self, jid, state):
        job = self.d.wait_job(jid, timeout=30)
        self.assertEqual(job["state"], state, job)
        wait_for(lambda: not self.live(self.escapee()), timeout=5, what="no process of the job left")

    def test_escapes_end_with_the_job(self):
        jid = self.submit_as(A, "--", "sh", "-c", self.escape_script("echo done"))
        self.check_none_left(jid, "succeeded")

    def test_escapes_end_at_timeout(self):
        jid = self.submit_as(A, "--timeout", "1s", "--", "sh", "-c", self.escape_script("sleep 300"))
        wait_for(lambda: len(self.live(self.escapee())) == 3 or None, what="3 escapees running")
        self.check_none_left(jid, "failed")
        self.assertEqual(self.d.job(jid)["reason"], "timeout")

    def test_escapes_end_at_cancel(self):
        jid = self.submit_as(A, "--", "sh", "-c", self.escape_script("sleep 300"))
        wait_for(lambda: len(self.live(self.escapee())) == 3 or None, what="3 escapees running")
        self.assertEqual(self.cli_as(A, "cancel", str(jid)).returncode, 0)
        self.check_none_left(jid, "canceled")

    def test_usage_is_recorded(self):
        prog = "x = bytearray(48 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\nsum(range(3 * 10**6))\n"
        # Debian's python3: the test's own interpreter may live where A
        # cannot reach it.
        jid = self.submit_as(A, "--", "/usr/bin/python3", "-c", prog)
        job = self.d.wait_job(jid)
        self.assertEqual(job["state"], "succeeded", job)
        self.assertGreater(job["cpu_ms"], 20)
        self.assertGreater(job["max_rss_kb"], 48 << 10)
        self.assertIsNone(self.d.job(self.submit_as(A, "--delay", "1h", "--", "true"))["cpu_ms"])


V2 = v2_cgroup_root() if IS_ROOT else None


@unittest.skipUnless(V2, "needs a writable cgroup v2 hierarchy")
class EscapesInCgroups(Escapes):
    """The same with a cgroup per job (here a cgroup of the test's own;
    under systemd, the service's delegated one: tests/system)."""

    def setUp(self):
        self.cg = os.path.join(V2, "ringq-test-%d-%s" % (os.getpid(), self.id().split(".")[-1]))
        self.daemon_kwargs = {"args": ["--cgroup", self.cg]}
        super().setUp()
        self.addCleanup(self.remove_cgroup)

    def remove_cgroup(self):
        self.d.stop()
        for name in os.listdir(self.cg) if os.path.isdir(self.cg) else []:
            if name.startswith("job-"):
                os.rmdir(os.path.join(self.cg, name))
        if os.path.isdir(self.cg):
            os.rmdir(self.cg)

    def test_jobs_run_in_their_own_cgroup(self):
        jid = self.submit_as(A, "--", "cat", "/proc/self/cgroup")
        self.d.wait_job(jid)
        self.assertIn("0::%s/job-%d\n" % (self.cg[len(V2):], jid), self.d.output(jid))
        wait_for(lambda: not os.path.exists(os.path.join(self.cg, "job-%d" % jid)), what="job cgroup removed")


@unittest.skipUnless(IS_ROOT, "needs root to make users and write limits.d")
class LoginLimits(UsersTest):
    start_daemon = False

    def setUp(self):
        super().setUp()
        # The shipped PAM service file, from a directory of the test's own
        # (RINGQ_PAM_CONFDIR), and a limits.d entry for A.
        self.pam = tempfile.mkdtemp(prefix="ringq-pam-")
        self.addCleanup(shutil.rmtree, self.pam, True)
        shutil.copy(os.path.join(REPO, "systemd", "pam.d", "ringq"), self.pam)
        self.conf = "/etc/security/limits.d/ringq-test-%d.conf" % os.getpid()
        with open(self.conf, "w") as f:
            f.write("%s soft nofile 222\n%s hard nofile 333\n%s hard nproc 77\n" % (A, A, A))
        self.addCleanup(os.unlink, self.conf)
        self.d.env["RINGQ_PAM_CONFDIR"] = self.pam
        self.start()

    def limits(self, jid):
        self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        out = {}
        for line in self.d.output(jid).splitlines()[1:]:
            m = re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", line)
            out[m.group(1).strip()] = (m.group(2), m.group(3))
        return out

    def test_jobs_get_their_owners_login_limits(self):
        lim = self.limits(self.submit_as(A, "--", "cat", "/proc/self/limits"))
        # valgrind keeps its own RLIMIT_NOFILE for the program it runs,
        # so under valgrind the job's (set before exec) is not the real one.
        if not VALGRIND:
            self.assertEqual(lim["Max open files"], ("222", "333"))
        self.assertEqual(lim["Max processes"][1], "77")
        other = self.limits(self.submit_as(B, "--", "cat", "/proc/self/limits"))
        self.assertNotEqual(other["Max open files"], ("222", "333"))
        self.assertNotEqual(other["Max processes"][1], "77")

    def test_jobs_get_their_submitters_umask(self):
        shared = os.path.join(self.d.root, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        jid = self.submit_as(A, "--wait", "--", "sh", "-c", "umask; touch %s/made-by-job" % shared, umask="077")
        self.assertEqual(self.d.output(jid), "0077\n")
        self.assertEqual(os.stat(os.path.join(shared, "made-by-job")).st_mode & 0o777, 0o600)
        jid = self.submit_as(A, "--wait", "--", "sh", "-c", "umask", umask="002")
        self.assertEqual(self.d.output(jid), "0002\n")


class Groups(UsersTest):
    def test_a_dropped_group_stays_dropped(self):
        a, extra = pwd.getpwnam(A), grp.getgrnam(EXTRA).gr_gid
        jid = self.submit_as(A, "--wait", "--", "id", "-G")
        self.assertIn(extra, [int(g) for g in self.d.output(jid).split()])
        jid = self.submit_as(A, "--wait", "--", "id", "-G", groups="clear")
        self.assertEqual([int(g) for g in self.d.output(jid).split()], [a.pw_gid])

    def test_the_gid_is_the_connections(self):
        extra = grp.getgrnam(EXTRA).gr_gid
        jid = self.submit_as(A, "--wait", "--", "id", "-g", regid=EXTRA)
        self.assertEqual(int(self.d.output(jid)), extra)
        self.assertEqual(self.d.job(jid)["owner_gid"], extra)


class Output(UsersTest):
    def test_output_is_private_and_immutable(self):
        jid = self.submit_as(A, "--wait", "--", "echo", "secret of A")
        path = self.d.job(jid)["stdout_path"]
        # B shares A's primary group; neither may touch the file directly.
        for user, cmd in ((B, ["cat", path]), (A, ["cat", path]), (A, ["sh", "-c", "echo more >> " + path]),
                          (A, ["chmod", "666", path]), (B, ["ls", "-l", os.path.dirname(path)]),
                          (A, ["ln", path, "/tmp/ringqu-link-%d" % jid])):
            r = subprocess.run(setpriv(user) + cmd, capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0, "%s could run %s" % (user, cmd))
        self.assertEqual(self.d.output(jid), "secret of A\n")
        # The owner reads it through ringq logs; B is refused.
        r = self.cli_as(A, "logs", str(jid))
        self.assertEqual((r.returncode, r.stdout), (0, "secret of A\n"), r.stderr)
        r = self.cli_as(B, "logs", str(jid))
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertNotIn("secret", r.stdout)

    def test_launch_records_are_ringqds_own(self):
        # They name every user's running jobs and pids, and what a crash
        # leaves there is committed and killed at the next start: a user
        # who could write them could have another's processes killed.
        path = os.path.join(self.d.state, "launches")
        jid = self.submit_as(A, "--", "sleep", "30")
        self.d.wait_state(jid, "running")
        st = os.stat(path)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600))
        for user, cmd in ((B, ["cat", path]), (A, ["cat", path]),
                          (B, ["dd", "if=/dev/zero", "of=" + path, "bs=32", "count=1", "seek=2", "conv=notrunc"]),
                          (A, ["sh", "-c", "echo x >> " + path])):
            r = subprocess.run(setpriv(user) + cmd, capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0, "%s could run %s" % (user, cmd))
        self.assertEqual(os.stat(path).st_size, st.st_size)
        self.d.call({"op": "cancel", "id": jid})


# Job lines go to the journal itself where one listens; here they are
# read back from stderr.
@unittest.skipIf(os.path.exists("/run/systemd/journal/socket"), "a journal would take the job lines")
class Logs(UsersTest):
    start_daemon = False

    def setUp(self):
        super().setUp()
        # The <N> priority prefixes are written only when stderr is the
        # stream $JOURNAL_STREAM names: make the log file that stream.
        open(self.d.logpath, "ab").close()
        st = os.stat(self.d.logpath)
        self.d.env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        self.start()

    def test_a_request_cannot_forge_a_log_line(self):
        forged = "/nonexistent\n<0>FORGED emergency line"
        jid = self.submit_as(A, "--", forged, "x")
        self.assertEqual(self.d.wait_job(jid)["state"], "failed")
        lines = self.log_lines()
        self.assertFalse([l for l in lines if "FORGED" in l and not l.startswith("<")], lines)
        self.assertFalse([l for l in lines if l.startswith("<0>")], lines)
        ended = [l for l in lines if "job %d ended" % jid in l]
        self.assertEqual(len(ended), 1, lines)
        # Quoted and escaped; a failure is logged at notice.
        self.assertIn('argv0="/nonexistent\\n<0>FORGED emergency line"', ended[0])
        self.assertTrue(ended[0].startswith("<5>"), ended[0])

    def test_a_timeout_is_a_warning(self):
        jid = self.submit_as(A, "--timeout", "200ms", "--", "sleep", "10")
        self.d.wait_job(jid)
        ended = [l for l in self.log_lines() if "job %d ended" % jid in l]
        self.assertTrue(ended and ended[0].startswith("<4>"), ended)


if __name__ == "__main__":
    unittest.main()
