"""ringq beyond one host, as the README's "More than one host" tells it:

- a client submits to another host's ringqd through ssh's Unix-socket
  forwarding. The remote ringqd sees the sshd process that serves the
  login (SO_PEERCRED), so the job runs there as the ssh login user, never
  as the local user. An sshd of the test's own on loopback (its own
  config, host key and authorized_keys) and a throwaway user (useradd)
  stand in for the other host and its account.
- the queue backed up while ringqd runs under submit load, with the
  sqlite3 shell's .backup and with VACUUM INTO, then restored: ringqd
  stopped (cleanly, or killed), the copy put in place, ringqd started.
"""
import fcntl
import json
import os
import grp
import pwd
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from harness import RINGQ, SLOW, Daemon, wait_for

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself, so by its absolute path
SSH, KEYGEN = shutil.which("ssh"), shutil.which("ssh-keygen")
HAVE_SSH = os.access(SSHD, os.X_OK) and SSH and KEYGEN
IS_ROOT = os.geteuid() == 0
# The directory sshd checks for and chroots its pre-auth child into; the
# openssh-server service makes it, a host without that service running
# has none.
PRIVSEP_DIR = "/run/sshd"
# Named per test process, as in test_users.py: the module may run twice
# at once (plain and under valgrind), each with its own user.
TAG = os.getpid() % 100000
USER, GROUP = "ringqm-ssh%d" % TAG, "ringqm-grp%d" % TAG


def cli(sock, *args, timeout=60):
    """The real CLI against sock, as the test's own user."""
    env = dict(os.environ)
    env.pop("RINGQ_SOCKET", None)
    return subprocess.run([RINGQ, "-s", sock] + list(args), capture_output=True, text=True,
                          timeout=timeout * SLOW, env=env, cwd="/")


def live_pids_of(uid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue  # gone meanwhile
        if int(status["Uid"].split()[1]) == uid and status["State"].split()[0] not in ("Z", "X"):
            out.append(int(d))
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SSHD_CONFIG = """\
ListenAddress 127.0.0.1:{port}
HostKey {dir}/host_key
PidFile none
UsePAM no
PermitRootLogin no
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {dir}/authorized_keys
# The files are in a directory below /tmp, which is world-writable.
StrictModes no
AllowStreamLocalForwarding yes
LogLevel VERBOSE
"""


@unittest.skipUnless(HAVE_SSH, "needs sshd, ssh and ssh-keygen (Debian: openssh-server, openssh-client)")
@unittest.skipUnless(IS_ROOT, "needs root to make a user and run sshd")
class SshForwarding(unittest.TestCase):
    """The other host: an sshd on loopback, reached as USER with a key."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ringq-ssh-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        # sshd reads authorized_keys as the user who logs in.
        os.chmod(cls.dir, 0o755)
        cls.make_user()
        cls.keep_privsep_dir()
        for name in ("host_key", "user_key"):
            subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", os.path.join(cls.dir, name)],
                           check=True)
        shutil.copy(os.path.join(cls.dir, "user_key.pub"), os.path.join(cls.dir, "authorized_keys"))
        os.chmod(os.path.join(cls.dir, "authorized_keys"), 0o644)
        cls.start_sshd()

    @classmethod
    def make_user(cls):
        def remove():
            if hasattr(cls, "pw"):
                # Our sshd's sessions end with their clients; userdel
                # refuses a user with processes.
                try:
                    wait_for(lambda: not live_pids_of(cls.pw.pw_uid), timeout=5, what="the ssh sessions to end")
                except AssertionError:
                    for pid in live_pids_of(cls.pw.pw_uid):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            subprocess.run(["userdel", USER], capture_output=True)
            for g in (USER, GROUP):
                subprocess.run(["groupdel", g], capture_output=True)
        remove()
        cls.addClassCleanup(remove)
        # GROUP plays the packaged socket's group ringq. The password '*'
        # allows no password, but unlike useradd's '!' it is not a locked
        # account, which sshd refuses without PAM.
        subprocess.run(["groupadd", "-r", GROUP], check=True)
        subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-p", "*", "-U",
                        "-G", GROUP, USER], check=True)
        cls.pw = pwd.getpwnam(USER)
        cls.gid = grp.getgrnam(GROUP).gr_gid

    @classmethod
    def keep_privsep_dir(cls):
        """Make /run/sshd if missing; remove it at the end if this run made
        it and no other run holds it (each holds a shared lock on it)."""
        made = False
        try:
            os.mkdir(PRIVSEP_DIR, 0o755)
            made = True
        except FileExistsError:
            pass
        fd = os.open(PRIVSEP_DIR, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_SH)

        def release():
            try:
                if made:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.rmdir(PRIVSEP_DIR)
            except OSError:
                pass  # another run still uses it
            finally:
                os.close(fd)
        cls.addClassCleanup(release)

    @classmethod
    def start_sshd(cls):
        cls.sshd_log = os.path.join(cls.dir, "sshd.log")
        for _ in range(5):  # the port may be taken between free_port() and sshd's bind
            cls.port = free_port()
            conf = os.path.join(cls.dir, "sshd_config")
            with open(conf, "w") as f:
                f.write(SSHD_CONFIG.format(port=cls.port, dir=cls.dir, user=USER))
            with open(cls.sshd_log, "ab") as log:
                cls.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", conf], stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log)
            cls.addClassCleanup(cls.stop, cls.sshd)

            def listening():
                if cls.sshd.poll() is not None:
                    return True
                with socket.socket() as s:
                    return s.connect_ex(("127.0.0.1", cls.port)) == 0
            wait_for(listening, what="sshd listening")
            if cls.sshd.poll() is None:
                with open(os.path.join(cls.dir, "known_hosts"), "w") as f:
                    with open(os.path.join(cls.dir, "host_key.pub")) as k:
                        f.write("[127.0.0.1]:%d %s" % (cls.port, k.read()))
                return
        raise AssertionError("sshd did not start:\n" + cls.log(cls.sshd_log))

    @staticmethod
    def log(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @staticmethod
    def stop(proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def ssh(self, *args):
        """ssh to the other host as USER, with nothing from the system's
        or root's ssh configuration."""
        return [SSH, "-F", "/dev/null", "-p", str(self.port), "-i", os.path.join(self.dir, "user_key"),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", "UserKnownHostsFile=" + os.path.join(self.dir, "known_hosts"),
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ExitOnForwardFailure=yes"] + list(args) + \
            [USER + "@127.0.0.1"]

    def setUp(self):
        # The other host's ringqd, as packaged: root, its socket 0660 with
        # the group its users must be in.
        self.d = Daemon()
        self.addCleanup(self.d.cleanup)
        self.d.start()
        os.chmod(self.d.root, 0o755)
        os.chown(self.d.sock, 0, self.gid)
        os.chmod(self.d.sock, 0o660)
        self.local = os.path.join(tempfile.mkdtemp(prefix="ringq-fwd-"), "h.sock")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.local), True)

    def forward(self, *opts):
        """ssh -N -L local:remote; the ssh process, once the forward answers
        a ping (or has exited)."""
        log = open(os.path.join(os.path.dirname(self.local), "ssh.log"), "ab")
        self.addCleanup(log.close)
        p = subprocess.Popen(self.ssh("-N", *opts, "-L", "%s:%s" % (self.local, self.d.sock)),
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.addCleanup(self.stop, p)
        wait_for(lambda: p.poll() is not None or cli(self.local, "ping").returncode == 0, timeout=20,
                 what="the forward")
        return p

    def ssh_log(self):
        return self.log(os.path.join(os.path.dirname(self.local), "ssh.log")) + self.log(self.sshd_log)

    def forwarded(self):
        p = self.forward("-o", "StreamLocalBindUnlink=yes")
        self.assertIsNone(p.poll(), self.ssh_log())
        return p

    def submit(self, sock, *argv):
        r = cli(sock, "submit", *argv)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout.split()[0])

    def test_a_job_submitted_through_the_forward_runs_as_the_ssh_user(self):
        self.forwarded()
        # The local end is private to whoever ran ssh: whoever can connect
        # to it acts as USER on the other host.
        st = os.stat(self.local)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (os.geteuid(), 0o600))
        # Root here; --no-env and -C, as the README says, since this
        # host's environment and directory mean nothing there.
        jid = self.submit(self.local, "--no-env", "-C", "/", "--", "sh", "-c", 'id -u; id -G; echo "$HOME"')
        r = cli(self.local, "wait", str(jid))
        self.assertEqual(r.returncode, 0, r.stderr + self.d.logtext())
        r = cli(self.local, "status", "--json", str(jid))
        self.assertEqual(r.returncode, 0, r.stderr)
        job = json.loads(r.stdout)["job"]
        self.assertEqual((job["owner_uid"], job["owner_gid"], job["state"]),
                         (self.pw.pw_uid, self.pw.pw_gid, "succeeded"), job)
        uid, groups, home = self.d.output(jid).splitlines()
        self.assertEqual(int(uid), self.pw.pw_uid)
        # The groups sshd gave the login, GROUP among them.
        self.assertIn(self.gid, [int(g) for g in groups.split()])
        self.assertEqual(home, self.pw.pw_dir)

    def test_the_other_host_sees_the_ssh_user_not_the_local_one(self):
        self.forwarded()
        mine = self.submit(self.local, "--no-env", "-C", "/", "--delay", "1h", "--", "true")
        roots = self.submit(self.d.sock, "--delay", "1h", "--", "true")  # root, on that host
        r = cli(self.local, "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([j["id"] for j in json.loads(r.stdout)["jobs"]], [mine])
        r = cli(self.local, "cancel", str(roots))
        self.assertEqual(r.returncode, 77, r.stdout + r.stderr)
        self.assertEqual(self.d.job(roots)["state"], "queued")
        self.assertEqual(cli(self.local, "cancel", str(mine)).returncode, 0)

    def test_logs_are_read_on_the_host_itself(self):
        self.forwarded()
        jid = self.submit(self.local, "--no-env", "-C", "/", "--", "echo", "from the other host")
        self.assertEqual(cli(self.local, "wait", str(jid)).returncode, 0)
        # ringqd passes the output file as a descriptor, which ssh does
        # not carry: through the forward, logs fails and prints nothing...
        r = cli(self.local, "logs", str(jid))
        self.assertEqual((r.returncode, r.stdout), (69, ""))
        self.assertIn("run 'ringq logs' on ringqd's host", r.stderr)
        # ...while ringq on that host, run over ssh, prints it.
        r = subprocess.run(self.ssh() + [shlex.join([RINGQ, "-s", self.d.sock, "logs", str(jid)])],
                           capture_output=True, text=True, timeout=60 * SLOW, stdin=subprocess.DEVNULL)
        self.assertEqual((r.returncode, r.stdout), (0, "from the other host\n"), r.stderr)

    def test_a_socket_left_by_an_earlier_ssh_is_replaced(self):
        # What an ssh that was killed leaves behind.
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.local)
        stale.close()
        p = self.forward()
        self.assertNotEqual(p.wait(30 * SLOW), 0, "ssh forwarded onto a stale socket without StreamLocalBindUnlink")
        self.assertIn("Address already in use", self.ssh_log())
        self.forwarded()
        r = cli(self.local, "ping")
        self.assertEqual(r.returncode, 0, r.stderr)


# The restore of the README, with the state directory and the backup in
# variables: ringqd stopped, the old WAL and shared-memory files gone
# (SQLite would apply that WAL to the restored file), the copy in place,
# and the output files of ids the restored queue will give out again.
RESTORE = r"""
set -e
rm -f "$STATE/queue.db-wal" "$STATE/queue.db-shm"
install -m 600 "$BACKUP" "$STATE/queue.db"
seq=$(sqlite3 "$STATE/queue.db" "select max((select coalesce(max(id), 0) from jobs), (select coalesce(max(id), 0) from jobs_id_floor))")
for f in "$STATE"/output/*.out "$STATE"/output/*.err; do
        n=${f##*/}
        if [ -e "$f" ] && [ "${n%.*}" -gt "$seq" ]; then rm -- "$f"; fi
done
"""


class Load(threading.Thread):
    """Submits on one connection until stopped; keeps each acknowledged id
    with the time its reply arrived, and every reply that was not ok."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.client = d.client()
        self.stopping = threading.Event()
        self.acked = []
        self.errors = []

    def run(self):
        while not self.stopping.is_set():
            r = self.client.call({"op": "submit", "argv": ["echo", "load"]})
            if r and r.get("ok"):
                self.acked.append((r["id"], time.monotonic()))
            else:
                self.errors.append(r)
                return

    def stop(self):
        self.stopping.set()
        self.join(60 * SLOW)
        self.client.close()


class Backup(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(workers=4, args=["--shutdown-grace", "200ms", "--kill-grace", "200ms"])
        self.addCleanup(self.d.cleanup)
        self.d.start()
        self.dir = tempfile.mkdtemp(prefix="ringq-backup-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.backup = os.path.join(self.dir, "queue.db")

    def run_ok(self, *args, **kw):
        r = self.d.cli(*args, **kw)
        self.assertEqual(r.returncode, 0, "ringq %s: %s" % (args, r.stderr))
        return r

    def jobs_by_cli(self):
        """Every job, as ringq list pages them."""
        r = self.run_ok("list", "--json", "-n", "1000000")
        return {j["id"]: j for line in r.stdout.splitlines() for j in json.loads(line)["jobs"]}

    def back_up_and_restore(self, backup_cmd, stop):
        db = os.path.join(self.d.state, "queue.db")
        # Two jobs running at the backup, one with attempts left.
        once = int(self.run_ok("submit", "--", "sleep", "300").stdout)
        again = int(self.run_ok("submit", "--attempts", "3", "--", "sleep", "300").stdout)
        for jid in (once, again):
            self.d.wait_state(jid, "running")
        # Enough delayed jobs that the copy takes many of .backup's steps
        # of 100 pages (each job holds the submitter's environment).
        r = self.run_ok("submit", "--delay", "1h", "--batch", "-", input="echo later\n" * 1500)
        self.assertEqual(len(r.stdout.split()), 1500)

        load = Load(self.d)
        load.start()
        self.addCleanup(load.stop)
        wait_for(lambda: len(load.acked) >= 50 or load.errors, what="submits under way")
        began = time.monotonic()
        before = {jid for jid, t in list(load.acked) if t < began}
        b = subprocess.run(["sqlite3", "-readonly", db, ".timeout 10000", backup_cmd % self.backup],
                           capture_output=True, text=True, timeout=120 * SLOW)
        ended = time.monotonic()
        # The load went on through the copy: its one connection always has
        # a submit in flight, and it is answered after the copy too.
        wait_for(lambda: load.errors or [t for _, t in list(load.acked) if t > ended],
                 what="a submit answered after the backup")
        load.stop()
        self.assertEqual(b.returncode, 0, b.stderr)
        self.assertEqual(load.errors, [])

        c = sqlite3.connect(self.backup)
        self.assertEqual(c.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        self.assertEqual(c.execute("PRAGMA user_version").fetchone()[0], 5)
        # Still incremental, so pruning keeps giving pages back.
        self.assertEqual(c.execute("PRAGMA auto_vacuum").fetchone()[0], 2)
        saved = dict(c.execute("SELECT id, state FROM jobs"))
        seq = c.execute("SELECT max((SELECT coalesce(max(id), 0) FROM jobs), (SELECT coalesce(max(id), 0) FROM jobs_id_floor))"
                        ).fetchone()[0]
        c.close()
        self.assertEqual(before - set(saved), set(), "acknowledged before the backup began, missing from it")
        self.assertEqual((saved[once], saved[again]), ("running", "running"))
        self.assertEqual(seq, max(saved))

        # A job after the backup writes output under an id the restored
        # queue will give out again.
        after = int(self.run_ok("submit", "--wait", "--", "echo", "after the backup").stdout.split()[0])
        self.assertGreater(after, seq)
        self.assertEqual(self.d.wait_job(seq + 1)["state"], "succeeded")
        self.assertNotEqual(self.d.output(seq + 1), "")

        stop()
        r = subprocess.run(["sh", "-c", RESTORE], env=dict(os.environ, STATE=self.d.state, BACKUP=self.backup),
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.d.start()
        jobs = self.jobs_by_cli()
        self.assertEqual(set(jobs), set(saved))
        # Running at the backup: recovered as interrupted, queued again
        # with their attempt given back (and started at once).
        for jid in (once, again):
            self.assertIn(jobs[jid]["state"], ("queued", "running"))
            job = self.d.wait_state(jid, "running")
            self.assertEqual((job["attempts"], job["interruptions"]), (1, 1))
        # The next id is the one after the backup's last, and shows no
        # output of the job that had it before the restore (a job that
        # runs clears its files; this one has not run).
        jid = int(self.run_ok("submit", "--delay", "1h", "--", "true").stdout)
        self.assertEqual(jid, seq + 1)
        self.assertEqual(self.run_ok("logs", str(jid)).stdout, "")
        self.run_ok("cancel", str(once), str(again))

    def stop_cleanly(self):
        self.assertEqual(self.d.stop(), 0)

    def crash(self):
        self.d.kill9()
        # What a crash leaves: the WAL of the database the copy replaces.
        self.assertTrue(os.path.exists(os.path.join(self.d.state, "queue.db-wal")))

    def test_dot_backup_under_load_and_restore_after_a_stop(self):
        self.back_up_and_restore(".backup %s", self.stop_cleanly)

    def test_vacuum_into_under_load_and_restore_after_a_crash(self):
        self.back_up_and_restore("VACUUM INTO '%s'", self.crash)


if __name__ == "__main__":
    unittest.main()
