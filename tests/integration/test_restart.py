"""A restart at once after kill -9, and what ringqd makes of a socket file
that something still answers at start.

A dead ringqd's listening socket is held by its io_uring, which the
kernel tears down after the process is gone: for a moment a connect() to
it still succeeds, then the connection is reset. A new ringqd must ask
(a ping) rather than take a connect for a live ringqd."""
import ctypes
import os
import socket
import subprocess
import threading
import time
import unittest

from harness import SLOW, VALGRIND, Daemon, DaemonTest, wait_for

# Under valgrind each start takes seconds: fewer rounds, the same checks.
ROUNDS = 4 if VALGRIND else 20
# How long the test keeps a dead ringqd's socket listening (below the
# start-up probe's 1 s deadline).
HOLD = 0.3
SYS_pidfd_getfd = 438  # the same on every architecture (Linux 5.6)


def fd_target(pid, fd):
    """What pid's descriptor fd is, or None: ringqd closes descriptors
    (a job's pipes) between the listing and the look."""
    try:
        return os.readlink("/proc/%d/fd/%s" % (pid, fd))
    except FileNotFoundError:
        return None


def take_listening_socket(pid, path):
    """A copy of pid's descriptor that listens on path (pidfd_getfd)."""
    with open("/proc/net/unix") as f:
        # Flags 00010000: listening (accepted sockets carry the path too).
        inodes = [c[6] for c in (line.split() for line in f) if c[-1] == path and c[3] == "00010000"]
    fds = [int(fd) for fd in os.listdir("/proc/%d/fd" % pid)
           if fd_target(pid, fd) in ["socket:[%s]" % i for i in inodes]]
    assert len(fds) == 1, "pid %d listens on %s through %s" % (pid, path, fds)
    pidfd = os.pidfd_open(pid)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.syscall(SYS_pidfd_getfd, pidfd, fds[0], 0)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return fd
    finally:
        os.close(pidfd)


def db_ids(d):
    db = d.db()
    try:
        return set(r[0] for r in db.execute("SELECT id FROM jobs"))
    finally:
        db.close()


class QuickRestart(DaemonTest):
    daemon_kwargs = {"workers": 2}

    def test_restart_at_once_after_kill_9(self):
        acked = []
        for n in range(ROUNDS):
            slow = self.d.submit(["sleep", "30"])
            acked += [slow] + [self.d.submit(["true"]) for _ in range(3)]
            wait_for(lambda: self.d.job(slow)["state"] == "running", what="round %d: a running job" % n)
            self.d.kill9()
            self.assertTrue(os.path.exists(self.d.sock), "kill -9 leaves the socket file behind")
            # No pause: start() fails the test if ringqd exits instead of
            # sending READY=1.
            self.d.start()
            self.assertTrue(self.d.call({"op": "ping"})["ok"], "round %d" % n)
            missing = set(acked) - db_ids(self.d)
            self.assertEqual(missing, set(), "round %d: acknowledged jobs lost" % n)
            # Whether recovery requeued it or not, it must not hold a
            # worker through the rounds that follow.
            r = self.d.call({"op": "cancel", "id": slow})
            self.assertTrue(r["ok"] or r["error"] == "invalid_state", r)
        self.assertEqual(self.d.logtext().count("removing stale socket"), ROUNDS)

    def test_restart_while_the_dead_ones_socket_still_takes_connections(self):
        # The kernel's teardown of the dead ringqd's io_uring, which keeps
        # its listening socket open, usually takes a few milliseconds;
        # here it takes HOLD seconds: the test holds a copy of that socket
        # and closes it then. A connect() succeeds all that time.
        slow = self.d.submit(["sleep", "30"])
        wait_for(lambda: self.d.job(slow)["state"] == "running", what="a running job")
        held = [take_listening_socket(self.d.pid(), self.d.sock)]

        def release():
            if held:
                os.close(held.pop())
        closer = threading.Timer(HOLD, release)

        def stop_holding():
            if closer.is_alive():
                closer.cancel()
                closer.join()
            release()
        self.addCleanup(stop_holding)
        self.d.kill9()
        closer.start()
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(self.d.sock)  # what made the check take it for a live ringqd
        probe.close()
        self.d.start()
        self.assertTrue(closer.finished.is_set())
        self.assertTrue(self.d.call({"op": "ping"})["ok"])
        self.assertIn(slow, db_ids(self.d))
        if not VALGRIND:  # slower to start than HOLD
            self.assertIn("hung up unanswered", self.d.logtext())


class Listener:
    """Something else at the socket path: a listener that treats each
    connection with handle(conn), or (handle None) never accepts."""

    def __init__(self, path, handle=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.ino = os.stat(path).st_ino
        self.handle = handle
        if handle:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.handle(conn)

    def close(self):
        # shutdown() wakes the thread blocked in accept().
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class StartupProbe(unittest.TestCase):
    def daemon(self, **kw):
        d = Daemon(**kw)
        self.addCleanup(d.cleanup)
        return d

    def listener(self, d, handle=None):
        lis = Listener(d.sock, handle)
        self.addCleanup(lis.close)
        return lis

    def run_daemon(self, d):
        p = subprocess.run(d.command(), capture_output=True, text=True, timeout=30 * SLOW,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stderr

    def assert_left_alone(self, d, lis):
        self.assertEqual(os.stat(d.sock).st_ino, lis.ino, "the other listener's socket file was replaced")

    def test_a_ringqd_that_refuses_the_probe_is_still_a_ringqd(self):
        # Its only client slot taken, a live ringqd answers the probe with
        # busy and closes: that is a ringqd's answer all the same.
        a = self.daemon(args=["--max-clients", "1"], config="root_reserve_clients = 0\n").start()
        held = a.client()
        self.addCleanup(held.close)
        self.assertTrue(held.call({"op": "ping"})["ok"])
        b = self.daemon()
        b.sock = a.sock
        rc, err = self.run_daemon(b)
        self.assertNotEqual(rc, 0)
        self.assertIn("socket %s is already served by a running ringqd" % a.sock, err)
        held.close()
        # Once it has seen that client go, its slot is free again.
        wait_for(lambda: a.call({"op": "ping"})["ok"], what="a free slot")

    def test_a_socket_that_answers_something_else_is_refused(self):
        def babble(conn):
            try:
                conn.recv(4096)
                conn.sendall(b"220 hello, this is not ringqd\n")
            except OSError:
                pass
        d = self.daemon()
        lis = self.listener(d, babble)
        rc, err = self.run_daemon(d)
        self.assertNotEqual(rc, 0)
        self.assertIn("socket %s is served by something other than ringqd" % d.sock, err)
        self.assert_left_alone(d, lis)

    def test_a_socket_that_never_answers_is_left_alone(self):
        # Connects succeed (the backlog takes them), nothing answers: a
        # stuck process may own it, so it is neither taken nor removed.
        d = self.daemon()
        lis = self.listener(d)
        t0 = time.monotonic()
        rc, err = self.run_daemon(d)
        took = time.monotonic() - t0
        self.assertNotEqual(rc, 0)
        self.assertIn("socket %s accepts connections but nothing answered a ping within 1 s" % d.sock, err)
        self.assertGreaterEqual(took, 1.0, "gave up before the deadline")
        self.assertLess(took, 10 * SLOW)
        self.assert_left_alone(d, lis)

    def test_a_socket_that_hangs_up_at_once_is_stale(self):
        # What a dead ringqd's socket does while the kernel tears down its
        # io_uring: the connect succeeds, then the connection is reset.
        d = self.daemon()
        lis = self.listener(d, lambda conn: None)
        d.start()
        self.assertNotEqual(os.stat(d.sock).st_ino, lis.ino)
        self.assertTrue(d.call({"op": "ping"})["ok"])
        self.assertIn("removing stale socket %s (it took a connection and hung up unanswered" % d.sock,
                      d.logtext())


if __name__ == "__main__":
    unittest.main()
