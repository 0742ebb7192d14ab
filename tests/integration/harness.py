"""Test harness: a real ringqd in a temporary state dir with its own
socket, a NOTIFY_SOCKET listener, a protocol client and the real CLI.

Paths to the binaries come from the environment (ctest sets them):
RINGQD, RINGQ. RINGQD_WRAPPER (e.g. "valgrind --error-exitcode=99 ...")
runs the daemon under a tool.
"""
import json
import re
import os
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

RINGQD = os.environ.get("RINGQD", "ringqd")
RINGQ = os.environ.get("RINGQ", "ringq")
# RINGQD_WRAPPER runs ringqd under a tool; "{root}" becomes the test's
# temporary directory, e.g. "valgrind --log-file={root}/vg.%p.log ...".
WRAPPER = shlex.split(os.environ.get("RINGQD_WRAPPER", ""))
VALGRIND = any("valgrind" in w for w in WRAPPER)
# Under a slow wrapper everything takes longer; scale waits, never asserts.
SLOW = 10.0 if WRAPPER else 1.0


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


class Notify:
    """A NOTIFY_SOCKET listener: collects every datagram ringqd sends."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)  # a ringqd run as another user must reach it
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append(data.decode())

    def all(self):
        with self.lock:
            return list(self.messages)

    def fields(self):
        """Every KEY=VALUE line received, in order."""
        out = []
        for m in self.all():
            for line in m.split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    out.append((k, v))
        return out

    def has(self, key, value=None):
        return any(k == key and (value is None or v == value) for k, v in self.fields())

    def statuses(self):
        return [v for k, v in self.fields() if k == "STATUS"]

    def close(self):
        self.done = True
        self.sock.close()
        self.thread.join(1)


class Client:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout * SLOW)
        self.sock.connect(path)
        self.buf = b""

    def send(self, obj):
        self.sock.sendall((json.dumps(obj) + "\n").encode())

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                if self.buf:
                    raise EOFError("connection closed mid-line")
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self):
        line = self.recv_line()
        return None if line is None else json.loads(line)

    def call(self, obj):
        self.send(obj)
        return self.recv()

    def close(self):
        self.sock.close()


class Daemon:
    def __init__(self, workers=2, args=(), env=None, root=None, config=None):
        self.root = root or tempfile.mkdtemp(prefix="ringq-test-")
        self.state = os.path.join(self.root, "state")
        self.sock = os.path.join(self.root, "ringq.sock")
        self.logpath = os.path.join(self.root, "ringqd.log")
        self.workers = workers
        self.args = list(args)
        self.env = dict(env or {})
        self.config = config
        self.proc = None
        self.notify = None
        self.starts = 0

    # --- lifecycle ---
    def command(self):
        cmd = [w.replace("{root}", self.root) for w in WRAPPER] + [RINGQD, "--state-dir", self.state,
                                                                     "--socket", self.sock]
        # workers=None: the config file says (a test that changes it).
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        # Always an explicit config file, so a system one never leaks in.
        path = os.path.join(self.root, "ringqd.conf")
        with open(path, "w") as f:
            f.write(self.config or "")
        return cmd + ["--config", path] + self.args

    def start(self, wait=True):
        self.starts += 1
        npath = os.path.join(self.root, "notify-%d.sock" % self.starts)
        self.notify = Notify(npath)
        env = dict(os.environ)
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_PID", None)
        env.update({"NOTIFY_SOCKET": npath})
        env.update(self.env)
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, env=env)
        if wait:
            wait_for(lambda: self.notify.has("READY", "1") or self.proc.poll() is not None,
                     timeout=20, what="READY=1")
            if self.proc.poll() is not None:
                raise AssertionError("ringqd exited at start (%s):\n%s%s" % (self.proc.returncode, self.logtext(),
                                                                           self.wrapper_logs()))
        return self

    def valgrind_logs(self):
        """(name, text) of every valgrind log of this test."""
        if not VALGRIND or not os.path.isdir(self.root):
            return []
        out = []
        for name in sorted(os.listdir(self.root)):
            if name.startswith("vg.") and name.endswith(".log"):
                with open(os.path.join(self.root, name), errors="replace") as f:
                    out.append((name, f.read()))
        return out

    def wrapper_logs(self):
        """All of them: a wrapper that fails before ringqd runs says why
        only there."""
        return "".join("\n%s:\n%s" % (name, text[-4000:]) for name, text in self.valgrind_logs())

    def valgrind_errors(self):
        """Error summaries of every valgrind log of this test that has errors."""
        return "\n".join(name + ":\n" + text[-4000:] for name, text in self.valgrind_logs()
                         if any(int(n) for n in re.findall(r"ERROR SUMMARY: (\d+) errors", text)))

    def logtext(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def pid(self):
        return self.proc.pid

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("ringqd did not stop on %s:\n%s" % (sig, self.logtext()))
        self.log.close()
        self.notify.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.notify.close()

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            if VALGRIND:
                # A clean stop, so valgrind reports leaks and errors.
                self.proc.terminate()
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and not self.log.closed:
            self.log.close()
        errors = self.valgrind_errors()
        if errors:
            shutil.copytree(self.root, self.root + ".kept", dirs_exist_ok=True)
            raise AssertionError("valgrind found errors in ringqd (kept in %s.kept):\n%s" % (self.root, errors))
        if self.notify:
            self.notify.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- talking to it ---
    def client(self):
        return Client(self.sock)

    def call(self, obj):
        c = self.client()
        try:
            return c.call(obj)
        finally:
            c.close()

    def submit(self, argv, **fields):
        r = self.call(dict(op="submit", argv=argv, **fields))
        assert r and r.get("ok"), r
        return r["id"]

    def job(self, jid):
        r = self.call({"op": "status", "id": jid})
        assert r and r.get("ok"), r
        return r["job"]

    def wait_job(self, jid, timeout=30):
        r = self.call({"op": "wait", "id": jid, "timeout_ms": int(timeout * 1000 * SLOW)})
        assert r and r.get("ok"), r
        return r["job"]

    def wait_state(self, jid, state, timeout=10):
        return wait_for(lambda: self.job(jid)["state"] == state and self.job(jid), timeout,
                        what="job %d %s" % (jid, state))

    def stats(self):
        return self.call({"op": "stats"})

    def cli(self, *args, input=None, timeout=60, env=None):
        e = dict(os.environ)
        e.pop("RINGQ_SOCKET", None)
        if env:
            e.update(env)
        return subprocess.run([RINGQ, "-s", self.sock] + list(args), input=input, capture_output=True,
                              text=True, timeout=timeout * SLOW, env=e)

    def db(self, timeout=10):
        """A read-only connection to the queue database, as an operator's
        sqlite3 shell would open it while ringqd runs."""
        return sqlite3.connect("file:%s/queue.db?mode=ro" % self.state, uri=True, timeout=timeout)

    def output(self, jid, stream="out"):
        """What the job wrote; a job that wrote nothing has no file."""
        try:
            with open(os.path.join(self.state, "output", "%d.%s" % (jid, stream))) as f:
                return f.read()
        except FileNotFoundError:
            return ""


def old_database(path, version):
    """An SQLite connection to a new file at path, filled from
    data/queue-v<version>.sql (a `.dump` of a database an older ringqd
    made) with its user_version set, which the dumps leave out."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "queue-v%d.sql" % version)) as f:
        dump = f.read()
    c = sqlite3.connect(path)
    c.executescript(dump)
    c.execute("PRAGMA user_version = %d" % version)
    return c


def proc_stats():
    """(pid, state, ppid, pgrp, session) of every process in /proc."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue  # gone meanwhile
        rest = s[s.rfind(")") + 2:].split()
        yield int(d), rest[0], int(rest[1]), int(rest[2]), int(rest[3])


def alive(pid):
    """Neither gone nor a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # Reaped between the open and the read: the read fails with ESRCH.
        return False


def procs_in_session(sid):
    """Live (non-zombie) processes whose session or process group is sid."""
    return [pid for pid, state, _, pgrp, session in proc_stats()
            if state not in ("Z", "X") and (pgrp == sid or session == sid)]


class DaemonTest(unittest.TestCase):
    """Each test gets a fresh ringqd (self.d); override daemon_kwargs."""
    daemon_kwargs = {}
    start_daemon = True

    def setUp(self):
        self.d = Daemon(**self.daemon_kwargs)
        self.addCleanup(self.d.cleanup)
        # Registered last, so it runs first: before cleanup removes the
        # state dir (the database may still be in use: WAL lets us read).
        self.addCleanup(self.check_db)
        if self.start_daemon:
            self.d.start()

    def check_db(self):
        """ringqd's own connection does not evaluate the schema's CHECK
        constraints (store.c says why): after every test, a connection
        that does checks what it wrote."""
        path = os.path.join(self.d.state, "queue.db")
        if not os.path.exists(path):
            return
        # Not read-only: a read-only connection's integrity_check skips
        # the CHECK constraints.
        db = sqlite3.connect(path, timeout=10)
        try:
            found = [r[0] for r in db.execute("PRAGMA integrity_check")]
        finally:
            db.close()
        self.assertEqual(found, ["ok"], "the queue ringqd left")

    def run_ok(self, *args, **kw):
        r = self.d.cli(*args, **kw)
        self.assertEqual(r.returncode, 0, "ringq %s: rc=%d\nstdout=%s\nstderr=%s" %
                         (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r
