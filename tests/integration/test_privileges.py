"""Who a job runs as, and who may touch it. Root ringqd runs each job as
the uid, gid and groups of the client that submitted it (SO_PEERCRED);
a non-root ringqd serves only its own uid and root."""
import grp
import os
import pwd
import subprocess
import unittest

from harness import RINGQ, Daemon, DaemonTest, wait_for

USERS = ("ringqtest1", "ringqtest2")
GROUP = "ringqtestg"


def ensure_users():
    if not any(g.gr_name == GROUP for g in grp.getgrall()):
        subprocess.run(["groupadd", "-r", GROUP], check=True)
    for u in USERS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/bin/sh", u], check=True)
    subprocess.run(["usermod", "-a", "-G", GROUP, USERS[0]], check=True)


def as_user(user, args, **kw):
    """Run the real CLI as `user`, with that user's groups."""
    return subprocess.run(["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--"] + args,
                          capture_output=True, text=True, timeout=60, **kw)


@unittest.skipUnless(os.geteuid() == 0, "needs root to create users")
class RootDaemon(DaemonTest):
    def setUp(self):
        ensure_users()
        super().setUp()
        os.chmod(self.d.sock, 0o666)
        os.chmod(self.d.root, 0o755)
        self.u1 = pwd.getpwnam(USERS[0])
        self.u2 = pwd.getpwnam(USERS[1])

    def cli_as(self, user, *args):
        return as_user(user, [RINGQ, "-s", self.d.sock] + list(args), cwd="/tmp")

    def test_job_runs_as_its_submitter(self):
        r = self.cli_as(USERS[0], "submit", "--wait", "--", "sh", "-c", "id -u; id -g; id -G")
        self.assertEqual(r.returncode, 0, r.stderr)
        jid = int(r.stdout)
        uid, gid, groups = self.d.output(jid).split("\n")[:3]
        self.assertEqual(int(uid), self.u1.pw_uid)
        self.assertEqual(int(gid), self.u1.pw_gid)
        self.assertIn(grp.getgrnam(GROUP).gr_gid, [int(g) for g in groups.split()])
        job = self.d.job(jid)
        self.assertEqual((job["owner_uid"], job["owner_gid"]), (self.u1.pw_uid, self.u1.pw_gid))
        # Output is ringqd's own, in a directory nobody else may open; the
        # owner reads it through the descriptor ringqd passes.
        st = os.stat(job["stdout_path"])
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600))
        self.assertEqual(os.stat(os.path.dirname(job["stdout_path"])).st_mode & 0o777, 0o700)
        r = self.cli_as(USERS[0], "logs", str(jid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split("\n")[0], str(self.u1.pw_uid))

    def test_minimal_env_is_the_owners(self):
        r = self.cli_as(USERS[1], "submit", "--no-env", "--wait", "--", "sh", "-c", "echo $USER:$LOGNAME:$HOME")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.d.output(int(r.stdout)), "%s:%s:/nonexistent\n" % (USERS[1], USERS[1]))

    def test_root_jobs_run_as_root(self):
        jid = self.d.submit(["id", "-u"])
        self.d.wait_job(jid)
        self.assertEqual(self.d.output(jid), "0\n")

    def test_others_are_forbidden(self):
        r = self.cli_as(USERS[0], "submit", "--", "sleep", "30")
        self.assertEqual(r.returncode, 0, r.stderr)
        jid = r.stdout.strip()
        self.d.wait_state(int(jid), "running")
        for verb in ("cancel", "status", "wait"):
            r = self.cli_as(USERS[1], verb, jid)
            self.assertEqual(r.returncode, 77, (verb, r.stdout, r.stderr))
            self.assertIn("forbidden", r.stderr)
        r = self.cli_as(USERS[1], "list")
        self.assertNotIn("sleep 30", r.stdout)
        r = self.cli_as(USERS[0], "list")
        self.assertIn("sleep 30", r.stdout)
        self.assertEqual(self.d.job(int(jid))["state"], "running")
        # The owner may cancel, and so may root.
        r = self.cli_as(USERS[0], "cancel", jid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.d.cli("retry", jid).returncode, 0)
        self.assertEqual(self.d.cli("cancel", jid).returncode, 0)

    def test_a_request_cannot_choose_its_owner(self):
        r = self.cli_as(USERS[0], "submit", "--json", "--", "true")
        c = self.d.client()
        resp = c.call({"op": "submit", "argv": ["true"], "owner_uid": 0})
        self.assertEqual((resp["ok"], resp["error"]), (False, "bad_request"))


@unittest.skipUnless(os.geteuid() == 0, "needs root to create users")
class UserDaemon(unittest.TestCase):
    def setUp(self):
        ensure_users()
        self.d = Daemon()
        self.addCleanup(self.d.cleanup)
        u = pwd.getpwnam(USERS[0])
        os.chmod(self.d.root, 0o777)
        cmd = self.d.command()
        self.d.command = lambda: ["setpriv", "--reuid", USERS[0], "--regid", USERS[0], "--init-groups", "--"] + cmd
        self.d.start()
        os.chmod(self.d.sock, 0o666)
        self.u = u

    def test_serves_its_own_uid_and_root_only(self):
        r = as_user(USERS[1], [RINGQ, "-s", self.d.sock, "ping"])
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("forbidden", r.stderr)
        r = as_user(USERS[0], [RINGQ, "-s", self.d.sock, "submit", "--wait", "--", "id", "-u"], cwd="/tmp")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.d.output(int(r.stdout)), "%d\n" % self.u.pw_uid)
        # Root may use it too; its jobs run as the daemon's user.
        jid = self.d.submit(["id", "-u"])
        self.d.wait_job(jid)
        self.assertEqual(self.d.output(jid), "%d\n" % self.u.pw_uid)


if __name__ == "__main__":
    unittest.main()
