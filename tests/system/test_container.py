"""The .deb in a real systemd (box.py): install (also into an image with
no systemd running), socket activation through the unit, the STATUS
line, a member of group ringq submitting, the jobs' sandbox against what
a login of the same user may do, an OOM kill, a reload and a start with
a bad configuration, the watchdog restarting a stalled loop with queued
jobs intact, a draining stop, removal and purge, the debug symbols, an
upgrade from the previous packaged version with jobs queued, and an
upgrade that re-executes ringqd under a running job. Needs root; builds
a cached bookworm rootfs once."""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import box
from box import wait_for

BUILD = os.environ.get("RINGQ_BUILD_DIR", "")
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PKG = None  # the directory with this tree's .deb and .ddeb, bound at /pkg
NEXT = None  # NextBuild: this tree's .deb as the next version


def setUpModule():
    global PKG, NEXT
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root")
    PKG = box.package(BUILD)
    if shutil.which("git"):
        NEXT = NextBuild()
        NEXT.start()


def tearDownModule():
    if PKG:
        shutil.rmtree(PKG, ignore_errors=True)
    if NEXT:
        NEXT.join()
        shutil.rmtree(NEXT.work, ignore_errors=True)


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

    def assertCgroupGone(self, jid):
        """The job's cgroup is gone, in either layout: unified, or the
        unified hierarchy of a hybrid one."""
        self.sh("test ! -e /sys/fs/cgroup/unified/system.slice/ringqd.service/job-%s && "
                "test ! -e /sys/fs/cgroup/system.slice/ringqd.service/job-%s" % (jid, jid))

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
        self.assertCgroupGone(jid)
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


def build_deb(src, work):
    """The .deb of the tree in src, built in work; its path. Only the three
    programs: cpack's install step builds nothing else (tests and tools of
    that tree are not needed)."""
    build = os.path.join(work, "build")
    for cmd in (["cmake", "-S", src, "-B", build, "-DCMAKE_INSTALL_PREFIX=/usr",
                 "-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON"],
                ["cmake", "--build", build, "-j2", "--target", "ringqd", "ringq", "ringq-bench"],
                ["cpack", "-G", "DEB", "-B", os.path.join(work, "pkg")]):
        r = box.run(cmd, cwd=build if cmd[0] == "cpack" else None, timeout=1200)
        if r.returncode != 0:
            raise AssertionError("%s failed:\n%s%s" % (" ".join(cmd), r.stdout[-3000:], r.stderr[-3000:]))
    return glob.glob(os.path.join(work, "pkg", "ringq_*.deb"))[0]


def build_release(commit):
    """The .deb of that commit, built from `git archive` once and kept in
    the box's cache directory (a commit's tree never changes)."""
    out = os.path.join(box.BOX_DIR, "release", commit)
    debs = glob.glob(os.path.join(out, "ringq_*.deb"))
    if debs:
        return debs[0]
    work = tempfile.mkdtemp(prefix="ringq-release-")
    try:
        src = os.path.join(work, "src")
        os.makedirs(src)
        archive = subprocess.run(["git", "-C", SRC, "archive", commit], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
        found = build_deb(src, work)
        os.makedirs(out, exist_ok=True)
        shutil.copy(found, out)
        # Older entries were for an older HEAD: keep only this one.
        for old in glob.glob(os.path.join(box.BOX_DIR, "release", "*")):
            if old != out:
                shutil.rmtree(old, ignore_errors=True)
        return os.path.join(out, os.path.basename(found))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_next(work):
    """This tree as its next patch version, what an upgrade to the next
    release installs: the tree's files (those git tracks and the new ones
    it does not ignore) copied to work, the project's version raised by
    one patch and a changelog entry added for it, then packaged. Returns
    (the .deb's path, its version)."""
    files = git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if files.returncode != 0:
        raise AssertionError("git ls-files: " + files.stderr)
    src = os.path.join(work, "src")
    for name in filter(None, files.stdout.split("\0")):
        path = os.path.join(SRC, name)
        if os.path.isfile(path):  # a tracked file may have been removed
            os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
            shutil.copy2(path, os.path.join(src, name))
    lists = os.path.join(src, "CMakeLists.txt")
    with open(lists) as f:
        text = f.read()
    m = re.search(r"project\(ringq VERSION (\d+)\.(\d+)\.(\d+)", text)
    if not m:
        raise AssertionError("no 'project(ringq VERSION X.Y.Z' in CMakeLists.txt")
    upstream = "%s.%s.%d" % (m.group(1), m.group(2), int(m.group(3)) + 1)
    with open(lists, "w") as f:
        f.write(text[:m.start()] + "project(ringq VERSION " + upstream + text[m.end():])
    changelog = os.path.join(src, "systemd/debian/changelog")
    with open(changelog) as f:
        text = f.read()
    trailer = re.search(r"(?m)^ -- .*$", text).group(0)
    with open(changelog, "w") as f:
        f.write("ringq (%s-1) bookworm; urgency=medium\n\n  * The next version, for the upgrade test.\n\n%s\n\n%s"
                % (upstream, trailer, text))
    return build_deb(src, work), upstream + "-1"


class NextBuild(threading.Thread):
    """build_next in the background, started with the module: the build
    (half a minute) runs while the boxes of the other tests boot and
    wait."""

    def __init__(self):
        super().__init__(daemon=True)
        self.work = tempfile.mkdtemp(prefix="ringq-next-")
        self.value = self.error = None

    def run(self):
        try:
            self.value = build_next(self.work)
        except Exception as e:  # handed to the test that needs it
            self.error = e

    def result(self):
        self.join()
        if self.error:
            raise self.error
        return self.value


def proc_start(b, pid):
    """A process's start time (clock ticks since boot), which tells it
    from a later one given the same pid."""
    r = b.sh("cat /proc/%s/stat" % pid)
    return r.returncode == 0 and r.stdout.rsplit(")", 1)[1].split()[19]


class Reexec(BoxTest):
    """An upgrade re-executes a running ringqd into the new binary: the
    same pid and unit (no restart), its running job adopted and its
    output whole, a client waiting on it served to the end; and a
    `systemctl restart` still drains, the interrupted job queued again
    without spending its attempt. Both packages are this tree's, the
    second as the next version (build_next)."""
    JOB = "sh -c 'i=1; while [ $i -le 60 ]; do echo $i; i=$((i+1)); sleep 1; done'"

    @classmethod
    def setUpClass(cls):
        if not NEXT:
            raise unittest.SkipTest("git is not installed")
        cls.next_deb, cls.next_version = NEXT.result()
        cls.b = box.Box("ringqreexec%d" % os.getpid(),
                        binds=[(PKG, "/pkg", True), (os.path.dirname(cls.next_deb), "/next", True)]).boot()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "b", None):
            cls.b.stop()

    def job(self, jid):
        return json.loads(self.sh("ringq status --json %s" % jid).stdout)["job"]

    def stats(self):
        return json.loads(self.sh("ringq stats --json").stdout)

    def test_1_an_upgrade_reexecutes_and_the_running_job_goes_on(self):
        self.sh("dpkg -i /pkg/%s && useradd -m -G ringq alice" % deb())
        old_version = self.sh("dpkg-query -W -f='${Version}' ringq").stdout
        # For test_2's drain; a reload only reads the configuration again.
        self.sh("echo 'shutdown_grace = 1s' >> /etc/ringq/ringqd.conf && systemctl reload ringqd")
        unit = self.service("MainPID", "NRestarts")
        self.assertEqual(self.stats()["reexecs"], 0)
        # The job's submitter waits for it, across both re-execs.
        self.sh("systemd-run -q --unit ringq-waiter -p User=alice -p WorkingDirectory=/home/alice "
                "-p RemainAfterExit=yes -p StandardOutput=file:/run/waiter.out -- ringq submit --wait -- " + self.JOB)
        jid = wait_for(lambda: self.sh("cat /run/waiter.out 2>/dev/null", ok=False).stdout.strip(), 10,
                       "the job's id")
        wait_for(lambda: self.job(jid)["state"] == "running", 10, "the job to run")
        pid = self.job(jid)["pid"]
        start = proc_start(self.b, pid)
        wait_for(lambda: len(self.sh("ringq logs %s" % jid).stdout.split()) >= 2, 10, "the job's first lines")

        # By hand, as ringqd(8) says: SIGUSR2 to the main process alone
        # (a plain `systemctl kill` would signal every job too).
        self.sh("systemctl kill --kill-whom=main -s USR2 ringqd.service")
        wait_for(lambda: self.stats()["reexecs"] == 1, 30, "the re-exec by SIGUSR2")

        t0 = time.monotonic()
        r = self.sh("dpkg -i /next/%s" % os.path.basename(self.next_deb), timeout=180)
        print("\nupgrade %s -> %s: %.1fs" % (old_version, self.next_version, time.monotonic() - t0))
        self.assertIn("ringqd re-executed (pid %s, version %s -> %s): 1 running job(s) adopted"
                      % (unit["MainPID"], old_version.rsplit("-", 1)[0], self.next_version.rsplit("-", 1)[0]),
                      r.stdout)
        self.assertNotIn("restarting", r.stderr)
        self.assertEqual(self.sh("dpkg-query -W -f='${Version}' ringq").stdout, self.next_version)
        # The same process, now the new binary: no restart, a new version.
        p = self.service("ActiveState", "SubState", "MainPID", "NRestarts")
        self.assertEqual((p["ActiveState"], p["SubState"], p["MainPID"], p["NRestarts"]),
                         ("active", "running", unit["MainPID"], "0"))
        self.assertEqual(self.sh("readlink /proc/%s/exe" % p["MainPID"]).stdout.strip(), "/usr/bin/ringqd")
        self.assertIn("ringqd %s protocol" % self.next_version.rsplit("-", 1)[0], self.sh("ringq ping").stdout)
        self.assertEqual(self.stats()["reexecs"], 2)
        # The job is the same process, adopted twice.
        self.assertEqual((self.job(jid)["state"], self.job(jid)["pid"]), ("running", pid))
        self.assertEqual(proc_start(self.b, pid), start)
        log = self.sh("journalctl -u ringqd.service --no-pager -o cat").stdout
        self.assertEqual(log.count("job %s adopted across a re-exec" % jid), 2, log[-3000:])

        # It ends well, its output whole: a line a second, none lost
        # while ringqd was between processes.
        end = wait_for(lambda: (lambda j: j["state"] != "running" and j)(self.job(jid)), 75, "the job's end")
        self.assertEqual((end["state"], end["reason"], end["attempts"]), ("succeeded", "exit 0", 1))
        self.assertEqual(self.sh("ringq logs %s" % jid).stdout, "".join("%d\n" % i for i in range(1, 61)))
        # Its submitter got it: exit 0 after its waits on each process.
        w = wait_for(lambda: (lambda p: p["SubState"] == "exited" and p)(
            self.b.show("ringq-waiter.service", "SubState", "ExecMainStatus")), 10, "the waiting client")
        self.assertEqual(w["ExecMainStatus"], "0")
        # A minute on, past WatchdogSec: the new process pings systemd.
        p = self.service("MainPID", "NRestarts")
        self.assertEqual((p["MainPID"], p["NRestarts"]), (unit["MainPID"], "0"))
        # The adopted job's cgroup went with it; a job the new process
        # starts gets its own, as before.
        self.assertCgroupGone(jid)
        r = self.alice("submit --wait -- grep ^0:: /proc/self/cgroup")
        out = self.sh("ringq logs %s" % r.stdout.strip()).stdout
        self.assertEqual(out, "0::/system.slice/ringqd.service/job-%s\n" % r.stdout.strip())

    def test_2_a_restart_drains_and_requeues_without_spending_an_attempt(self):
        jid = self.alice("submit -- sleep 600").stdout.strip()
        wait_for(lambda: self.job(jid)["state"] == "running", 10, "the job to run")
        before, pid = self.service("MainPID")["MainPID"], self.job(jid)["pid"]
        t0 = time.monotonic()
        self.sh("systemctl restart ringqd.service")
        # A stop is a stop: the job had shutdown_grace (1 s), then
        # SIGTERM, and a new process took over.
        self.assertGreater(time.monotonic() - t0, 1.0)
        self.assertNotEqual(self.service("MainPID")["MainPID"], before)
        ends = [json.loads(l) for l in self.sh("journalctl -u ringqd.service -o json --no-pager RINGQ_JOB_ID=%s"
                                                % jid).stdout.splitlines()]
        self.assertEqual([(e["RINGQ_STATE"], e["RINGQ_REASON"].split()[0]) for e in ends if "RINGQ_REASON" in e],
                         [("queued", "interrupted")])
        # Queued again and started again by the new process, with its one
        # attempt given back: still the first.
        j = wait_for(lambda: (lambda j: j["state"] == "running" and j["pid"] != pid and j)(self.job(jid)), 20,
                     "the job to run again")
        self.assertEqual((j["attempts"], j["max_attempts"], j["interruptions"]), (1, 1, 1))
        self.sh("ringq cancel %s" % jid)

    def test_3_an_upgrade_obeys_policy_rc_d_and_starts_a_stopped_ringqd(self):
        deb_ = "/next/" + os.path.basename(self.next_deb)
        # A policy that forbids restarts forbids the re-exec too.
        self.sh("printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d")
        self.addCleanup(self.sh, "rm -f /usr/sbin/policy-rc.d")
        before, reexecs = self.service("MainPID")["MainPID"], self.stats()["reexecs"]
        r = self.sh("dpkg -i %s" % deb_)
        self.assertIn("policy-rc.d returned 101", r.stderr)
        self.assertNotIn("re-executed", r.stdout)
        self.assertEqual((self.service("MainPID")["MainPID"], self.stats()["reexecs"]), (before, reexecs))
        self.sh("rm /usr/sbin/policy-rc.d")
        # Not running: started, as at any upgrade before re-exec.
        self.sh("systemctl stop ringqd.service")
        r = self.sh("dpkg -i %s" % deb_)
        self.assertNotIn("re-executed", r.stdout)
        p = self.service("ActiveState", "MainPID")
        self.assertEqual(p["ActiveState"], "active")
        self.assertNotEqual(p["MainPID"], before)


class Upgrade(BoxTest):
    @classmethod
    def setUpClass(cls):
        commit, cls.old_version = previous_release()
        if not commit:
            raise unittest.SkipTest("no previous version to upgrade from: " + cls.old_version)
        cls.old = build_release(commit)
        # Whether the old ringqd knows the reexec op decides what the
        # upgrade does to it.
        cls.old_reexecs = '"reexec"' in git("show", "%s:include/ringq/protocol.h" % commit).stdout
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
        r = self.sh("dpkg -i /pkg/%s" % deb(), timeout=180)

        p = self.service("ActiveState", "SubState", "MainPID", "NRestarts")
        self.assertEqual((p["ActiveState"], p["SubState"], p["NRestarts"]), ("active", "running", "0"))
        if self.old_reexecs:
            # Re-executed in place: the same process, its job adopted.
            self.assertEqual(p["MainPID"], old_pid)
            self.assertIn("1 running job(s) adopted", r.stdout)
        else:
            # The old ringqd answers the reexec op with bad_request (and
            # would die of SIGUSR2): the postinst restarts it instead.
            self.assertNotEqual(p["MainPID"], old_pid)
            self.assertIn("ringq: the running ringqd predates re-exec", r.stderr)
            self.assertIn("ringq: restarting ringqd.service", r.stderr)
        # The new binary runs: its file is the installed one, not the
        # deleted old one.
        self.assertEqual(self.sh("readlink /proc/%s/exe" % p["MainPID"]).stdout.strip(), "/usr/bin/ringqd")
        self.sh("cmp /proc/%s/exe /usr/bin/ringqd" % p["MainPID"])
        # The running job ended well (drained before a restart, or run on
        # by the new process); the queued ones wait.
        wait_for(lambda: "running" not in self.sh("ringq status %s" % running).stdout, 10, "the job's end")
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
