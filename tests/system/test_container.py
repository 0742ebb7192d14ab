"""The .deb in a real systemd (box.py): install (also into an image with
no systemd running), socket activation through the unit, the STATUS
line, a member of group ringq submitting, the jobs' sandbox against what
a login of the same user may do, an OOM kill, a reload and a start with
a bad configuration, the watchdog restarting a stalled loop with queued
jobs intact, a draining stop, removal and purge, the debug symbols, and
an upgrade from the previous packaged version with jobs queued. Needs
root; builds a cached bookworm rootfs once."""
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
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PKG = None  # the directory with this tree's .deb and .ddeb, bound at /pkg


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError("timed out waiting for " + what)


def setUpModule():
    global PKG
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root")
    if not BUILD:
        raise unittest.SkipTest("RINGQ_BUILD_DIR is not set")
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        if "CMAKE_INSTALL_PREFIX:PATH=/usr\n" not in f.read():
            raise AssertionError("configure the build with -DCMAKE_INSTALL_PREFIX=/usr to package it")
    box.setup()
    PKG = tempfile.mkdtemp(prefix="ringq-pkg-")
    r = box.run(["cpack", "-G", "DEB", "-B", PKG], cwd=BUILD)
    assert r.returncode == 0, r.stdout + r.stderr


def tearDownModule():
    if PKG:
        shutil.rmtree(PKG, ignore_errors=True)


def deb():
    return os.path.basename(glob.glob(os.path.join(PKG, "ringq_*.deb"))[0])


def ddeb():
    return os.path.basename(glob.glob(os.path.join(PKG, "ringq-dbgsym_*.ddeb"))[0])


class BoxTest(unittest.TestCase):
    def sh(self, script, ok=True, timeout=120):
        r = self.b.sh(script, timeout=timeout)
        if ok:
            self.assertEqual(r.returncode, 0, "%s\nstdout: %s\nstderr: %s" % (script, r.stdout, r.stderr))
        return r

    def service(self, *props):
        return self.b.show("ringqd.service", *props)

    def socket(self, *props):
        return self.b.show("ringqd.socket", *props)

    def alice(self, args, ok=True):
        """`ringq ARGS` as alice, in her home."""
        return self.sh("cd /home/alice && runuser -u alice -- ringq %s" % args, ok=ok)


class Container(BoxTest):
    @classmethod
    def setUpClass(cls):
        cls.b = box.Box("ringqtest%d" % os.getpid(), binds=[(PKG, "/pkg", True)]).boot()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "b", None):
            cls.b.stop()

    def test_1_install(self):
        self.sh("dpkg -i /pkg/%s" % deb())
        self.assertRegex(self.sh("ringqd --version").stdout, r"^ringqd \d+\.\d+\.\d+")
        self.sh("getent group ringq")
        # Both enabled (after a boot queued jobs run without a client),
        # both started.
        self.assertEqual(self.sh("systemctl is-enabled ringqd.socket ringqd.service").stdout.split(),
                         ["enabled", "enabled"])
        wait_for(lambda: self.service("SubState")["SubState"] == "running", 30, "ringqd running")
        self.assertEqual(self.socket("ActiveState")["ActiveState"], "active")
        conffiles = self.sh("dpkg-query -W -f='${Conffiles}' ringq").stdout
        for f in ("/etc/ringq/ringqd.conf", "/etc/pam.d/ringq"):
            self.assertIn(" %s " % f, conffiles)
        self.sh("test -f /usr/share/bash-completion/completions/ringq && "
                "test -f /usr/share/doc/ringq/copyright && test -f /usr/share/doc/ringq/changelog.Debian.gz && "
                "test -f /usr/share/man/man1/ringq.1.gz && test -f /usr/share/man/man5/ringqd.conf.5.gz && "
                "test -f /usr/share/man/man8/ringqd.8.gz")

    def test_1b_debug_symbols_match_the_binaries(self):
        """The .deb's binaries are stripped; ringq-dbgsym has each one's
        debug file under its build id, where debuggers look."""
        tmp = tempfile.mkdtemp(prefix="ringq-deb-")
        self.addCleanup(shutil.rmtree, tmp, True)
        subprocess.run(["dpkg-deb", "-x", os.path.join(PKG, deb()), tmp], check=True)
        ids = []
        for name in ("ringqd", "ringq", "ringq-bench"):
            path = os.path.join(tmp, "usr/bin", name)
            sections = box.run(["readelf", "-S", "-W", path]).stdout
            self.assertNotIn(".debug_info", sections, name)
            self.assertIn(".gnu_debuglink", sections, name)
            notes = box.run(["readelf", "-n", path]).stdout
            ids.append(re.search(r"Build ID: ([0-9a-f]+)", notes).group(1))
        self.sh("dpkg -i /pkg/%s" % ddeb())
        for i in ids:
            self.sh("test -s /usr/lib/debug/.build-id/%s/%s.debug" % (i[:2], i[2:]))
        self.sh("dpkg -r ringq-dbgsym")

    def test_2_service_reaches_running(self):
        self.sh("ringq ping")
        p = wait_for(lambda: (lambda p: p["SubState"] == "running" and p)(
            self.service("ActiveState", "SubState", "StatusText", "Type")), 30, "active/running")
        self.assertEqual(p["ActiveState"], "active")
        self.assertRegex(p["StatusText"], r"^accepting; queued 0/10000; running 0/\d+; ok 0, failed 0; rejected 0$")
        r = self.sh("systemd-analyze security --no-pager ringqd.service", ok=False)
        print("\n" + r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr)

    def test_3_group_member_submits(self):
        self.sh("useradd -m -G ringq alice && useradd -m bob")
        jid = self.alice("submit --wait -- id -un").stdout.strip()
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
        jid = self.alice("submit --wait -- sh -c "
                         "'grep ^0:: /proc/self/cgroup; setsid -f sleep 1000; echo left'").stdout.strip()
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
        jid = self.alice("submit --wait -- cat /proc/self/limits").stdout.strip()
        limits = self.sh("runuser -u alice -- ringq logs %s" % jid).stdout
        self.assertRegex(limits, r"Max open files\s+222\s+333\s")
        fail = self.alice("submit --wait -- false", ok=False).stdout.strip()
        entries = {}
        for line in self.sh("journalctl -u ringqd.service -o json --no-pager RINGQ_JOB_ID=%s" % fail).stdout.splitlines():
            e = json.loads(line)
            entries[e["RINGQ_STATE"]] = e
        self.assertEqual(set(entries), {"running", "failed"})
        self.assertEqual((entries["failed"]["PRIORITY"], entries["failed"]["RINGQ_REASON"]), ("5", "exit 1"))
        self.assertEqual(entries["failed"]["RINGQ_OWNER_UID"], self.sh("id -u alice").stdout.strip())
        self.assertEqual(entries["failed"]["RINGQ_QUEUE"], "default")
        self.sh("rm /etc/security/limits.d/alice.conf")

    def test_3d_a_job_may_do_what_a_login_may(self):
        """Each probe runs as alice twice, in a shell outside ringqd's
        sandbox and as her job, with the same result expected: user and
        mount namespaces (rootless containers, with a /proc and /sys of
        their own), the devices her login sees, tracing her own
        processes, a setgid directory, the live host name."""
        # Debian's udev rule makes the tun device 0666 on a host; the
        # container's is root-only.
        self.sh("chmod 666 /dev/net/tun && hostname ringqbox-renamed")
        self.addCleanup(self.sh, "hostname ringqbox")
        probes = [
            "unshare -Ur id -u",
            "unshare -Urm sh -c 'mount -t tmpfs none /mnt && echo mounted'",
            "unshare -Urpf --mount-proc cat /proc/1/comm",
            "unshare -Urnm sh -c 'mount -t sysfs none /sys && echo sysfs'",
            "sh -c 'exec 3<>/dev/net/tun && echo tun'",
            "strace -f -o /dev/null true && echo traced",
            "rm -rf shared && mkdir shared && chmod 2770 shared && stat -c %A shared",
            "hostname",
        ]
        for probe in probes:
            with self.subTest(probe=probe):
                login = self.sh("cd /home/alice && runuser -u alice -- sh -c %s" % quote(probe + " 2>&1"), ok=False)
                self.assertEqual(login.returncode, 0, "the probe fails in a login too: " + login.stdout)
                r = self.alice("submit --wait -- sh -c %s" % quote(probe + " 2>&1"), ok=False)
                job = self.sh("runuser -u alice -- ringq logs %s" % r.stdout.strip()).stdout
                self.assertEqual((r.returncode, job), (0, login.stdout))

    def test_3e_tasks_max_is_most_of_the_machine(self):
        """All users' jobs share the service's task limit: 80 % of the
        machine's tasks, not systemd's 15 %."""
        pid_max = int(self.sh("cat /proc/sys/kernel/pid_max").stdout)
        threads = int(self.sh("cat /proc/sys/kernel/threads-max").stdout)
        share = int(self.service("TasksMax")["TasksMax"]) / min(pid_max, threads)
        self.assertAlmostEqual(share, 0.80, delta=0.001)

    def test_3f_an_oom_kill_fails_the_job_not_the_service(self):
        self.assertEqual(self.service("OOMPolicy")["OOMPolicy"], "continue")
        if self.sh("grep -qw memory /sys/fs/cgroup/cgroup.controllers", ok=False).returncode != 0:
            # A hybrid layout (cgroup v1 memory controller, read-only in
            # the container) cannot limit a unit's memory, and systemd
            # sees no OOM kill in it: only a whole-machine OOM would do,
            # which a test must not cause.
            self.skipTest("no cgroup v2 memory controller in the container")
        before = self.service("MainPID", "NRestarts")
        self.sh("systemctl set-property --runtime ringqd.service MemoryMax=96M MemorySwapMax=0")
        self.addCleanup(self.sh, "systemctl set-property --runtime ringqd.service MemoryMax=infinity "
                                 "MemorySwapMax=infinity")
        # tail keeps the last line, and /dev/zero has no newline: it
        # grows until the limit.
        jid = self.alice("submit --wait -- tail -n1 /dev/zero", ok=False).stdout.strip()
        st = json.loads(self.sh("ringq status --json %s" % jid).stdout)["job"]
        self.assertEqual((st["state"], st["reason"]), ("failed", "signal 9"))
        self.assertIn("killed by the OOM killer", self.sh("journalctl -u ringqd.service --no-pager").stdout)
        after = self.service("ActiveState", "MainPID", "NRestarts")
        self.assertEqual((after["ActiveState"], after["MainPID"], after["NRestarts"]),
                         ("active", before["MainPID"], before["NRestarts"]))
        self.assertEqual(self.alice("submit --wait -- echo next").returncode, 0)

    def test_4_watchdog_restarts_a_stalled_loop(self):
        self.sh("mkdir -p /etc/systemd/system/ringqd.service.d && printf '[Service]\\nWatchdogSec=2s\\n"
                "TimeoutAbortSec=2s\\n' > /etc/systemd/system/ringqd.service.d/test.conf && "
                "systemctl daemon-reload && systemctl restart ringqd.service")
        ids = [self.alice("submit --delay 1h -- true").stdout.strip() for _ in range(3)]
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

    def test_4b_reload_with_a_bad_config_fails_and_keeps_the_old_one(self):
        conf = "/etc/ringq/ringqd.conf"
        self.sh("cp %s /root/ringqd.conf.orig" % conf)
        self.addCleanup(self.sh, "cp /root/ringqd.conf.orig %s && systemctl reload ringqd" % conf)
        before = self.service("MainPID", "NRestarts")
        self.sh("printf 'high_water = 500\\nhigh_watr = 400\\n' >> %s" % conf)
        r = self.sh("systemctl reload ringqd", ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("high_watr", self.sh("journalctl -u ringqd.service --no-pager -n 20").stdout)
        p = self.service("ActiveState", "SubState", "MainPID", "NRestarts")
        self.assertEqual((p["ActiveState"], p["SubState"], p["MainPID"], p["NRestarts"]),
                         ("active", "running", before["MainPID"], before["NRestarts"]))
        self.assertEqual(json.loads(self.sh("ringq stats --json").stdout)["high_water"], 10000)
        # Fixed, the same reload goes through.
        self.sh("sed -i '/^high_watr = /d' %s && systemctl reload ringqd" % conf)
        wait_for(lambda: json.loads(self.sh("ringq stats --json").stdout)["high_water"] == 500, 10,
                 "high_water 500")

    def test_4c_a_bad_config_at_start_is_not_retried_and_keeps_the_socket(self):
        conf = "/etc/ringq/ringqd.conf"
        self.sh("cp %s /root/ringqd.conf.orig && echo 'workers = none' >> %s" % (conf, conf))
        self.addCleanup(self.sh, "cp /root/ringqd.conf.orig %s && systemctl start ringqd" % conf)
        r = self.sh("systemctl restart ringqd", ok=False)
        self.assertNotEqual(r.returncode, 0)
        p = self.service("ActiveState", "Result", "ExecMainStatus", "NRestarts")
        self.assertEqual((p["ActiveState"], p["Result"], p["ExecMainStatus"]), ("failed", "exit-code", "78"))
        # Clients keep coming: each gets an error, and neither a restart
        # loop nor the start limit takes the socket down.
        for _ in range(25):
            self.assertNotEqual(self.sh("ringq ping", ok=False).returncode, 0)
        time.sleep(3)
        q = self.service("ActiveState", "NRestarts")
        self.assertEqual((q["ActiveState"], q["NRestarts"]), ("failed", p["NRestarts"]))
        s = self.socket("ActiveState", "SubState")
        self.assertEqual((s["ActiveState"], s["SubState"]), ("active", "listening"))
        # Fixed: the next client starts ringqd through the socket.
        self.sh("cp /root/ringqd.conf.orig %s" % conf)
        self.assertIn("round trip", self.sh("ringq ping").stdout)
        self.assertEqual(self.service("SubState")["SubState"], "running")

    def test_5_stop_drains_running_jobs(self):
        self.sh("systemctl restart ringqd.service")
        jid = self.alice("submit -- sleep 2").stdout.strip()
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

    def test_6_remove_keeps_the_queue_and_purge_removes_everything(self):
        self.sh("systemctl start ringqd.service")
        self.sh("dpkg -r ringq")
        self.sh("! test -e /usr/bin/ringqd && ! test -e /lib/systemd/system/ringqd.service")
        self.assertEqual(self.service("ActiveState")["ActiveState"], "inactive")
        self.assertEqual(self.socket("ActiveState")["ActiveState"], "inactive")
        self.sh("! test -e /run/ringq/ringq.sock")
        # Removal keeps the queue, the configuration and the group.
        self.sh("test -s /var/lib/ringq/queue.db && test -f /etc/ringq/ringqd.conf && getent group ringq")
        self.sh("dpkg -P ringq")
        self.sh("! test -e /var/lib/ringq && ! test -e /etc/ringq && ! test -e /etc/pam.d/ringq && "
                "! getent group ringq")
        self.assertEqual(self.sh("find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled "
                                 "-name 'ringqd*'").stdout, "")


def quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


class Image(unittest.TestCase):
    def test_install_and_purge_without_a_running_systemd(self):
        """Into an image or a chroot: no systemd runs, yet the group is
        made and both units are enabled for its first boot; a purge
        there takes the links and the group away again."""
        r = box.run_once("test ! -d /run/systemd/system && dpkg -i /pkg/%s >/dev/null && getent group ringq && "
                         "readlink /etc/systemd/system/sockets.target.wants/ringqd.socket "
                         "/etc/systemd/system/multi-user.target.wants/ringqd.service && "
                         "dpkg -P ringq >/dev/null && ! getent group ringq && "
                         "find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled -name 'ringqd*' "
                         "-printf 'left: %%p\\n'" % deb(),
                         binds=[(PKG, "/pkg", True)])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[1:], ["/lib/systemd/system/ringqd.socket",
                                                     "/lib/systemd/system/ringqd.service"])


def top_version(changelog):
    m = re.match(r"ringq \(([^)]+)\) ", changelog)
    return m and m.group(1)


def git(*args):
    return box.run(["git", "-C", SRC] + list(args))


def previous_release():
    """The newest commit of HEAD's history whose package has a lower
    version than this tree's (its changelog's top entry; before there was
    a changelog, the project's version): the version an installed system
    upgrades from."""
    with open(os.path.join(SRC, "systemd/debian/changelog")) as f:
        current = top_version(f.read())
    if not shutil.which("git"):
        return None, "git is not installed"
    revs = git("rev-list", "--first-parent", "HEAD")
    if revs.returncode != 0:
        return None, "git rev-list: " + revs.stderr.strip()
    for commit in revs.stdout.split():
        r = git("show", "%s:systemd/debian/changelog" % commit)
        if r.returncode == 0:
            version = top_version(r.stdout)
        else:
            m = re.search(r"project\(ringq VERSION (\S+?)[ )]", git("show", "%s:CMakeLists.txt" % commit).stdout)
            version = m and m.group(1)
        if version and subprocess.run(["dpkg", "--compare-versions", version, "lt", current]).returncode == 0:
            return commit, version
    return None, "no commit of HEAD's history has a version below " + current


def build_release(commit):
    """The .deb of that commit, built from `git archive` once and kept in
    the box's cache directory (a commit's tree never changes)."""
    out = os.path.join(box.BOX_DIR, "release", commit)
    debs = glob.glob(os.path.join(out, "ringq_*.deb"))
    if debs:
        return debs[0]
    work = tempfile.mkdtemp(prefix="ringq-release-")
    try:
        src, build = os.path.join(work, "src"), os.path.join(work, "build")
        os.makedirs(src)
        archive = subprocess.run(["git", "-C", SRC, "archive", commit], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
        # Only the three programs: cpack's install step builds nothing
        # else (tests and tools of that tree are not needed).
        for cmd in (["cmake", "-S", src, "-B", build, "-DCMAKE_INSTALL_PREFIX=/usr",
                     "-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON"],
                    ["cmake", "--build", build, "-j2", "--target", "ringqd", "ringq", "ringq-bench"],
                    ["cpack", "-G", "DEB", "-B", os.path.join(work, "pkg")]):
            r = box.run(cmd, cwd=build if cmd[0] == "cpack" else None, timeout=1200)
            if r.returncode != 0:
                raise AssertionError("%s failed:\n%s%s" % (" ".join(cmd), r.stdout[-3000:], r.stderr[-3000:]))
        os.makedirs(out, exist_ok=True)
        found = glob.glob(os.path.join(work, "pkg", "ringq_*.deb"))[0]
        shutil.copy(found, out)
        # Older entries were for an older HEAD: keep only this one.
        for old in glob.glob(os.path.join(box.BOX_DIR, "release", "*")):
            if old != out:
                shutil.rmtree(old, ignore_errors=True)
        return os.path.join(out, os.path.basename(found))
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Upgrade(BoxTest):
    @classmethod
    def setUpClass(cls):
        commit, cls.old_version = previous_release()
        if not commit:
            raise unittest.SkipTest("no previous version to upgrade from: " + cls.old_version)
        cls.old = build_release(commit)
        cls.b = box.Box("ringqupgrade%d" % os.getpid(),
                        binds=[(PKG, "/pkg", True), (os.path.dirname(cls.old), "/old", True)]).boot()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "b", None):
            cls.b.stop()

    def test_upgrade_keeps_the_queue_and_runs_the_new_ringqd(self):
        self.sh("dpkg -i /old/%s && useradd -m -G ringq alice" % os.path.basename(self.old))
        self.assertEqual(self.sh("dpkg-query -W -f='${Version}' ringq").stdout, self.old_version)
        queued = [self.alice("submit --delay 1h -- echo %d" % i).stdout.strip() for i in range(3)]
        running = self.alice("submit -- sleep 3").stdout.strip()
        wait_for(lambda: "running" in self.sh("ringq status %s" % running).stdout, 10, "the job to run")
        old_pid = self.service("MainPID")["MainPID"]
        self.sh("dpkg -i /pkg/%s" % deb(), timeout=180)

        p = self.service("ActiveState", "SubState", "MainPID")
        self.assertEqual((p["ActiveState"], p["SubState"]), ("active", "running"))
        self.assertNotEqual(p["MainPID"], old_pid)
        # The new binary runs: its file is the installed one, not the
        # deleted old one.
        self.assertEqual(self.sh("readlink /proc/%s/exe" % p["MainPID"]).stdout.strip(), "/usr/bin/ringqd")
        self.sh("cmp /proc/%s/exe /usr/bin/ringqd" % p["MainPID"])
        # The running job drained before the restart; the queued ones wait.
        st = json.loads(self.sh("ringq status --json %s" % running).stdout)["job"]
        self.assertEqual((st["state"], st["reason"]), ("succeeded", "exit 0"))
        listed = self.sh("ringq list --state queued --json").stdout.replace(" ", "")
        for i in queued:
            self.assertIn('"id":%s,' % i, listed)
        # The socket was started, not restarted, and serves the new ringqd;
        # both units are now enabled and recorded for a purge.
        self.assertEqual(self.socket("ActiveState")["ActiveState"], "active")
        self.assertEqual(self.alice("submit --wait -- echo after").returncode, 0)
        self.assertEqual(self.sh("systemctl is-enabled ringqd.socket ringqd.service").stdout.split(),
                         ["enabled", "enabled"])
        self.sh("test -f /var/lib/systemd/deb-systemd-helper-enabled/ringqd.service.dsh-also")


if __name__ == "__main__":
    unittest.main()
