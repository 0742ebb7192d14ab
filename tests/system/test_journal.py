"""ringqd's lines in a real journal: the .deb in a booted systemd (box.py).
Job lines (start, retry, end) are entries with fields, found by
`journalctl -u ringqd RINGQ_JOB_ID=N`, each at its priority; the other
lines reach the journal through stderr with their <N> priority read and
stripped; `ringqd --check-config` passes on the config as shipped and
exits 78 on a bad one. Needs root; shares the cached rootfs."""
import glob
import json
import os
import shutil
import unittest

import box
from box import wait_for

BUILD = os.environ.get("RINGQ_BUILD_DIR", "")


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class Journal(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pkg = box.package(BUILD)
        deb = os.path.basename(glob.glob(os.path.join(cls.pkg, "*.deb"))[0])
        cls.b = box.Box("ringqjournal%d" % os.getpid(), binds=[(cls.pkg, "/pkg", True)]).boot()
        r = cls.b.sh("dpkg -i /pkg/%s && useradd -m -G ringq alice && id -u alice" % deb)
        assert r.returncode == 0, r.stdout + r.stderr
        cls.alice = r.stdout.strip().splitlines()[-1]

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

    def submit(self, *args):
        return self.sh("cd /home/alice && runuser -u alice -- ringq submit %s" % " ".join(args),
                       ok=False).stdout.strip()

    def entries(self, jid, n):
        """The job's journal entries, as the manual says to find them,
        once there are n."""
        def get():
            out = self.sh("journalctl -u ringqd -o json --no-pager RINGQ_JOB_ID=%s" % jid).stdout
            e = [json.loads(l) for l in out.splitlines()]
            return len(e) >= n and e
        return wait_for(get, 20, "%d journal entries of job %s" % (n, jid))

    def assertJob(self, e, jid):
        self.assertEqual((e["SYSLOG_IDENTIFIER"], e["RINGQ_JOB_ID"], e["RINGQ_OWNER_UID"], e["RINGQ_QUEUE"]),
                         ("ringqd", jid, self.alice, "default"), e)

    def test_1_check_config_as_shipped(self):
        r = self.sh("ringqd --check-config")
        self.assertEqual(r.stdout, "ringqd: /etc/ringq/ringqd.conf: configuration ok\n")
        r = self.sh("printf 'high_water = 10\\nlow_water = 10\\n' > /tmp/bad.conf && "
                    "ringqd --check-config -c /tmp/bad.conf", ok=False)
        self.assertEqual((r.returncode, r.stderr),
                         (78, "/tmp/bad.conf:2: low_water (10) must be below high_water (10)\n"))

    def test_2_a_failing_job_start_retry_and_end(self):
        jid = self.submit("--wait --attempts 2 --backoff 100ms -- sh -c 'exit 3'")
        e = self.entries(jid, 4)
        for x in e:
            self.assertJob(x, jid)
        self.assertEqual([(x["RINGQ_STATE"], x["RINGQ_ATTEMPT"], x["PRIORITY"]) for x in e],
                         [("running", "1", "6"), ("queued", "1", "5"), ("running", "2", "6"), ("failed", "2", "5")])
        self.assertEqual([x.get("RINGQ_REASON") for x in e], [None, "exit 3", None, "exit 3"])
        self.assertRegex(e[0]["MESSAGE"], r"^job %s started: pid=\d+ owner=%s " % (jid, self.alice))
        self.assertRegex(e[1]["MESSAGE"], r"^job %s ended: retry scheduled, reason=\"exit 3\"" % jid)
        self.assertRegex(e[3]["MESSAGE"], r"^job %s ended: failed, reason=\"exit 3\"" % jid)
        # The text of the line, not a second copy of it, is in the
        # journal: the stderr stream carried none of these.
        out = self.sh("journalctl -u ringqd -o json --no-pager _TRANSPORT=stdout").stdout
        self.assertNotIn("job %s " % jid, out)

    def test_3_priorities_of_every_kind_of_line(self):
        # A line that is not a job's reaches the journal through stderr:
        # its <N> is read as its priority and is not in the text.
        self.sh("systemctl restart ringqd.service")

        def ready():
            out = self.sh("journalctl -u ringqd -o json --no-pager _TRANSPORT=stdout").stdout
            return [e for e in map(json.loads, out.splitlines()) if " ready: " in e.get("MESSAGE", "")]
        e = wait_for(ready, 20, "the ready line")[-1]
        self.assertRegex(e["MESSAGE"], r"^ringqd \S+ ready: ")
        self.assertEqual((e["PRIORITY"], e["SYSLOG_IDENTIFIER"]), ("5", "ringqd"))
        # A success at info, a timeout at warning, a cancel at info; a
        # start has no reason.
        ok = self.submit("--wait -- true")
        slow = self.submit("--wait --timeout 300ms -- sleep 30")
        (s0, s1), (t0, t1) = self.entries(ok, 2), self.entries(slow, 2)
        self.assertEqual((s0["RINGQ_STATE"], s0["RINGQ_ATTEMPT"], s0["PRIORITY"], "RINGQ_REASON" in s0),
                         ("running", "1", "6", False))
        self.assertEqual((s1["RINGQ_STATE"], s1["RINGQ_REASON"], s1["RINGQ_ATTEMPT"], s1["PRIORITY"]),
                         ("succeeded", "exit 0", "1", "6"))
        self.assertEqual((t1["RINGQ_STATE"], t1["RINGQ_REASON"], t1["PRIORITY"]), ("failed", "timeout", "4"))
        run = self.submit("-- sleep 30")
        self.entries(run, 1)
        self.sh("runuser -u alice -- ringq cancel %s" % run)
        c = self.entries(run, 2)[-1]
        self.assertJob(c, run)
        self.assertEqual((c["RINGQ_STATE"], c["PRIORITY"]), ("canceled", "6"))

if __name__ == "__main__":
    unittest.main()
