"""The .deb in a real systemd: install, socket activation through the
unit, the STATUS line, a member of group ringq submitting, the watchdog
restarting a stalled loop with queued jobs intact, a draining stop, and
a clean removal. Needs root; builds a cached bookworm rootfs once."""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import box

BUILD = os.environ.get("RINGQ_BUILD_DIR", "")


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError("timed out waiting for " + what)


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class Container(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not BUILD:
            raise unittest.SkipTest("RINGQ_BUILD_DIR is not set")
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            cache = f.read()
        if "CMAKE_INSTALL_PREFIX:PATH=/usr\n" not in cache:
            raise AssertionError("configure the build with -DCMAKE_INSTALL_PREFIX=/usr to package it")
        box.setup()
        cls.pkg = tempfile.mkdtemp(prefix="ringq-pkg-")
        r = box.run(["cpack", "-G", "DEB", "-B", cls.pkg], cwd=BUILD)
        assert r.returncode == 0, r.stdout + r.stderr
        cls.deb = os.path.basename(glob.glob(os.path.join(cls.pkg, "*.deb"))[0])
        cls.b = box.Box("ringqtest%d" % os.getpid(), binds=[(cls.pkg, "/pkg", True)]).boot()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "b", None):
            cls.b.stop()
        shutil.rmtree(getattr(cls, "pkg", ""), ignore_errors=True)

    def sh(self, script, ok=True, timeout=120):
        r = self.b.sh(script, timeout=timeout)
        if ok:
            self.assertEqual(r.returncode, 0, "%s\nstdout: %s\nstderr: %s" % (script, r.stdout, r.stderr))
        return r

    def service(self, *props):
        return self.b.show("ringqd.service", *props)

    def test_1_install(self):
        self.sh("dpkg -i /pkg/%s" % self.deb)
        self.assertRegex(self.sh("ringqd --version").stdout, r"^ringqd \d+\.\d+\.\d+")
        self.sh("getent group ringq")
        self.assertEqual(self.sh("systemctl is-enabled ringqd.socket").stdout.strip(), "enabled")
        self.assertEqual(self.sh("systemctl is-active ringqd.socket").stdout.strip(), "active")
        self.sh("test -f /etc/ringq/ringqd.conf && test -f /usr/share/bash-completion/completions/ringq")
        # Socket activated, not started yet.
        self.assertEqual(self.service("ActiveState")["ActiveState"], "inactive")

    def test_2_service_reaches_running(self):
        self.sh("ringq ping")  # a connection starts it
        p = wait_for(lambda: (lambda p: p["SubState"] == "running" and p)(
            self.service("ActiveState", "SubState", "StatusText", "Type")), 30, "active/running")
        self.assertEqual(p["ActiveState"], "active")
        self.assertRegex(p["StatusText"], r"^accepting; queued 0/10000; running 0/\d+; ok 0, failed 0; rejected 0$")
        r = self.sh("systemd-analyze security --no-pager ringqd.service", ok=False)
        print("\n" + r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr)

    def test_3_group_member_submits(self):
        self.sh("useradd -m -G ringq alice && useradd -m bob")
        r = self.sh("cd /home/alice && runuser -u alice -- ringq submit --wait -- id -un")
        jid = r.stdout.strip()
        self.assertEqual(self.sh("runuser -u alice -- ringq logs %s" % jid).stdout, "alice\n")
        # The file is ringqd's own; alice reads it through ringq logs.
        self.assertEqual(self.sh("stat -c %%U:%%a /var/lib/ringq/output/%s.out" % jid).stdout.strip(), "root:600")
        r = self.sh("runuser -u bob -- ringq ping", ok=False)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("Permission denied", r.stderr)

    def test_3b_a_job_owns_its_processes_in_its_cgroup(self):
        main = self.service("MainPID")["MainPID"]
        self.sh("getfattr -n trusted.delegate --only-values /sys/fs/cgroup/unified/system.slice/ringqd.service "
                "2>/dev/null || getfattr -n trusted.delegate --only-values /sys/fs/cgroup/system.slice/ringqd.service")
        self.assertRegex(self.sh("cat /proc/%s/cgroup" % main).stdout, r"(?m)^0::/system.slice/ringqd.service/daemon$")
        r = self.sh("cd /home/alice && runuser -u alice -- ringq submit --wait -- sh -c "
                    "'grep ^0:: /proc/self/cgroup; setsid -f sleep 1000; echo left'")
        jid = r.stdout.strip()
        out = self.sh("runuser -u alice -- ringq logs %s" % jid).stdout
        self.assertEqual(out, "0::/system.slice/ringqd.service/job-%s\nleft\n" % jid)
        # The daemon that left the session ended with the job's cgroup,
        # which is gone too.
        wait_for(lambda: self.sh("pgrep -u alice -x sleep", ok=False).returncode == 1, 10, "no sleep of alice")
        self.sh("! ls -d /sys/fs/cgroup/unified/system.slice/ringqd.service/job-%s "
                "/sys/fs/cgroup/system.slice/ringqd.service/job-%s 2>/dev/null" % (jid, jid))
        job = self.sh("ringq status --json %s" % jid).stdout
        self.assertRegex(job, r'"cpu_ms":\s*\d+')

    def test_3c_journal_fields_and_login_limits(self):
        self.sh("printf 'alice soft nofile 222\\nalice hard nofile 333\\n' > /etc/security/limits.d/alice.conf && "
                "systemctl reload ringqd")
        jid = self.sh("cd /home/alice && runuser -u alice -- ringq submit --wait -- cat /proc/self/limits"
                      ).stdout.strip()
        limits = self.sh("runuser -u alice -- ringq logs %s" % jid).stdout
        self.assertRegex(limits, r"Max open files\s+222\s+333\s")
        fail = self.sh("cd /home/alice && runuser -u alice -- ringq submit --wait -- false", ok=False).stdout.strip()
        entries = {}
        for line in self.sh("journalctl -u ringqd.service -o json --no-pager RINGQ_JOB_ID=%s" % fail).stdout.splitlines():
            e = json.loads(line)
            entries[e["RINGQ_STATE"]] = e
        self.assertEqual(set(entries), {"running", "failed"})
        self.assertEqual((entries["failed"]["PRIORITY"], entries["failed"]["RINGQ_REASON"]), ("5", "exit 1"))
        self.assertEqual(entries["failed"]["RINGQ_OWNER_UID"], self.sh("id -u alice").stdout.strip())
        self.assertEqual(entries["failed"]["RINGQ_QUEUE"], "default")
        self.sh("rm /etc/security/limits.d/alice.conf")

    def test_4_watchdog_restarts_a_stalled_loop(self):
        self.sh("mkdir -p /etc/systemd/system/ringqd.service.d && printf '[Service]\\nWatchdogSec=2s\\n"
                "TimeoutAbortSec=2s\\n' > /etc/systemd/system/ringqd.service.d/test.conf && "
                "systemctl daemon-reload && systemctl restart ringqd.service")
        ids = [self.sh("cd /home/alice && runuser -u alice -- ringq submit --delay 1h -- true").stdout.strip()
               for _ in range(3)]
        before = self.service("MainPID", "NRestarts")
        self.sh("kill -STOP %s" % before["MainPID"])
        after = wait_for(lambda: (lambda p: p["NRestarts"] != before["NRestarts"] and p["SubState"] == "running"
                                  and p)(self.service("MainPID", "NRestarts", "SubState", "Result")),
                         60, "a watchdog restart")
        self.assertNotEqual(after["MainPID"], before["MainPID"])
        r = self.sh("journalctl -u ringqd.service --no-pager | grep -i watchdog", ok=False)
        self.assertIn("Watchdog timeout", r.stdout)
        listed = self.sh("ringq list --state queued --json").stdout
        for i in ids:
            self.assertIn('"id":%s,' % i, listed.replace(" ", ""))
        self.sh("rm -r /etc/systemd/system/ringqd.service.d && systemctl daemon-reload && "
                "ringq cancel %s" % " ".join(ids))

    def test_5_stop_drains_running_jobs(self):
        self.sh("systemctl restart ringqd.service")
        jid = self.sh("cd /home/alice && runuser -u alice -- ringq submit -- sleep 2").stdout.strip()
        wait_for(lambda: "running" in self.sh("ringq status %s" % jid).stdout, 10, "the job to run")
        t0 = time.monotonic()
        self.sh("systemctl stop ringqd.service")
        self.assertGreater(time.monotonic() - t0, 1.0)
        p = self.service("ActiveState", "Result")
        self.assertEqual((p["ActiveState"], p["Result"]), ("inactive", "success"))
        r = self.sh("sqlite3 -readonly /var/lib/ringq/queue.db 'select state, reason from jobs where id=%s'" % jid)
        self.assertEqual(r.stdout.strip(), "succeeded|exit 0")
        log = self.sh("journalctl -u ringqd.service --no-pager -o cat").stdout
        self.assertIn("job %s ended: succeeded" % jid, log)

    def test_6_remove_and_purge(self):
        self.sh("dpkg -r ringq")
        self.sh("! test -e /usr/bin/ringqd && ! test -e /lib/systemd/system/ringqd.service")
        self.assertNotEqual(self.sh("systemctl is-active ringqd.socket", ok=False).stdout.strip(), "active")
        self.sh("test -d /var/lib/ringq")  # removal keeps the queue
        self.sh("dpkg -P ringq && ! test -e /var/lib/ringq && ! test -e /etc/ringq")


if __name__ == "__main__":
    unittest.main()
