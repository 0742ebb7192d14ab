"""A real systemd (PID 1) in a container, for the project's own tests.

Builds (once, cached in $RINGQ_BOX_DIR, default /var/tmp/ringq-box) a
Debian bookworm rootfs with debootstrap, boots it with systemd-nspawn
--boot, and runs commands inside with nsenter. The host needs no
systemd: nspawn runs with --register=no --keep-unit, and each boot
starts from the pristine rootfs (--volatile=overlay).
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

BOX_DIR = os.environ.get("RINGQ_BOX_DIR", "/var/tmp/ringq-box")
ROOTFS = os.path.join(BOX_DIR, "rootfs")
SUITE = "bookworm"
# What ringq's package depends on, plus what the tests use inside
# (strace: a job traces its own processes).
PACKAGES = ["systemd", "dbus", "libjansson4", "liburing2", "libsqlite3-0", "libsystemd0", "libpam0g",
            "libpam-modules", "passwd", "procps", "util-linux", "sqlite3", "attr", "strace"]
IN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def apt_mirror():
    """The archive this machine's own apt uses for SUITE, so the test runs
    wherever apt works ($RINGQ_BOX_MIRROR overrides it)."""
    if os.environ.get("RINGQ_BOX_MIRROR"):
        return os.environ["RINGQ_BOX_MIRROR"]
    found = []
    d = "/etc/apt/sources.list.d"
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        path = os.path.join(d, name)
        if name.endswith(".sources"):
            with open(path) as f:
                for block in f.read().split("\n\n"):
                    fields = {}
                    for line in block.splitlines():
                        if ":" in line and not line.startswith(("#", " ")):
                            k, v = line.split(":", 1)
                            fields[k.strip().lower()] = v.split()
                    if "deb" in fields.get("types", []) and SUITE in fields.get("suites", []) and \
                            fields.get("enabled", ["yes"])[0] != "no":
                        found += fields.get("uris", [])
        elif name.endswith(".list"):
            found += list_uris(path)
    found += list_uris("/etc/apt/sources.list")
    if not found:
        raise RuntimeError("no apt source for %s on this machine; set RINGQ_BOX_MIRROR" % SUITE)
    return found[0]


def list_uris(path):
    """URIs of 'deb [options] URI SUITE ...' lines of a one-line-style file."""
    out = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        words = line.split("#", 1)[0].split()
        if words[:1] != ["deb"]:
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2 and words[1] == SUITE:
            out.append(words[0])
    return out


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 600)
    return subprocess.run(cmd, **kw)


def host_tools():
    missing = [p for p, b in (("systemd-container", "systemd-nspawn"), ("debootstrap", "debootstrap"))
               if not shutil.which(b)]
    if missing:
        run(["apt-get", "update", "-qq"], check=True)
        run(["apt-get", "install", "-y", "-qq"] + missing, check=True,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def setup():
    """Build the cached rootfs if it is not there (about a minute)."""
    host_tools()
    ready = os.path.join(ROOTFS, ".ringq-box-ready")
    want = " ".join(PACKAGES) + "\n"
    if os.path.exists(ready):
        with open(ready) as f:
            if f.read() == want:
                return
    tmp = ROOTFS + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(BOX_DIR, exist_ok=True)
    r = run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, tmp, apt_mirror()],
            timeout=900)
    if r.returncode != 0:
        raise RuntimeError("debootstrap failed:\n" + r.stdout[-3000:] + r.stderr[-3000:])
    with open(os.path.join(tmp, "etc/hostname"), "w") as f:
        f.write("ringqbox\n")
    for unit in ("console-getty.service", "getty@.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                 "dpkg-db-backup.timer", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer"):
        link = os.path.join(tmp, "etc/systemd/system", unit)
        if os.path.lexists(link):
            os.remove(link)
        os.symlink("/dev/null", link)
    for d in ("var/cache/apt/archives",):
        for f in os.listdir(os.path.join(tmp, d)):
            if f.endswith(".deb"):
                os.remove(os.path.join(tmp, d, f))
    # The package list it was built with: a changed list rebuilds it.
    with open(os.path.join(tmp, ".ringq-box-ready"), "w") as f:
        f.write(want)
    shutil.rmtree(ROOTFS, ignore_errors=True)
    os.rename(tmp, ROOTFS)


def run_once(script, binds=(), timeout=300):
    """script run by sh as PID 1 of a container that does not boot: no
    systemd runs (no /run/systemd/system), as in an image being built or
    a chroot. Starts from the pristine rootfs; nothing it does is kept."""
    args = ["systemd-nspawn", "-q", "-D", ROOTFS, "--register=no", "--keep-unit", "--volatile=overlay",
            "--private-network", "--console=pipe"]
    for host, inside, ro in binds:
        args.append(("--bind-ro=" if ro else "--bind=") + host + ":" + inside)
    return run(args + ["--", "env", "-i", "PATH=" + IN_PATH, "HOME=/root", "LANG=C.UTF-8", "sh", "-c", script],
               timeout=timeout, stdin=subprocess.DEVNULL)


class Box:
    def __init__(self, name, binds=()):
        self.name = name
        self.binds = list(binds)  # (host, inside, read_only)
        self.proc = None
        self.console = os.path.join(BOX_DIR, name + ".console")

    def boot(self, timeout=60):
        args = ["systemd-nspawn", "-q", "-D", ROOTFS, "-M", self.name, "--boot", "--register=no", "--keep-unit",
                "--console=read-only", "--volatile=overlay", "--private-network"]
        for host, inside, ro in self.binds:
            args.append(("--bind-ro=" if ro else "--bind=") + host + ":" + inside)
        self.log = open(self.console, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("systemd-nspawn exited:\n" + open(self.console).read()[-3000:])
            if self.leader():
                state = self.sh("systemctl is-system-running").stdout.strip()
                if state in ("running", "degraded"):
                    return self
            time.sleep(0.3)
        raise RuntimeError("the container did not boot in %ds (state %r)" % (timeout, state))

    def leader(self):
        """Host pid of the container's PID 1: nspawn's child named systemd."""
        if not self.proc or self.proc.poll() is not None:
            return None
        try:
            for task in os.listdir("/proc/%d/task" % self.proc.pid):
                with open("/proc/%d/task/%s/children" % (self.proc.pid, task)) as f:
                    for c in f.read().split():
                        with open("/proc/%s/comm" % c) as g:
                            if g.read().strip() == "systemd":
                                return int(c)
        except OSError:
            return None
        return None

    def exec(self, args, timeout=120, input=None):
        pid = self.leader()
        if not pid:
            raise RuntimeError("the container is not running")
        return run(["nsenter", "-t", str(pid), "-a", "--", "env", "-i", "PATH=" + IN_PATH, "HOME=/root",
                    "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"] + list(args), timeout=timeout, input=input)

    def sh(self, script, timeout=120):
        return self.exec(["sh", "-c", script], timeout=timeout)

    def show(self, unit, *props):
        r = self.exec(["systemctl", "show", "--no-pager", "-p", ",".join(props), unit])
        return dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None and self.leader():
            self.exec(["systemctl", "poweroff", "--no-block"], timeout=30)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_for(pred, timeout, what):
    """pred() until it is true (its value), polled every 0.25 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError("timed out waiting for " + what)


def package(build):
    """The .deb of the build dir (configured for /usr), made with cpack
    into a new temporary directory, after the box is set up: that dir."""
    if not build:
        raise unittest.SkipTest("RINGQ_BUILD_DIR is not set")
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        if "CMAKE_INSTALL_PREFIX:PATH=/usr\n" not in f.read():
            raise AssertionError("configure the build with -DCMAKE_INSTALL_PREFIX=/usr to package it")
    setup()
    pkg = tempfile.mkdtemp(prefix="ringq-pkg-")
    r = run(["cpack", "-G", "DEB", "-B", pkg], cwd=build)
    assert r.returncode == 0, r.stdout + r.stderr
    return pkg
