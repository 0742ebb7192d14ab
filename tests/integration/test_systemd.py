"""systemd integration without systemd as PID 1: socket activation with
systemd-socket-activate, reload through SIGHUP with a NOTIFY_SOCKET
listener, and the units checked by systemd-analyze verify."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import RINGQD, Client, Daemon, DaemonTest, Notify, wait_for

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


class SocketActivation(unittest.TestCase):
    def test_serves_the_passed_socket_and_leaves_it(self):
        d = Daemon(workers=1)
        self.addCleanup(d.cleanup)
        notify = Notify(os.path.join(d.root, "notify.sock"))
        self.addCleanup(notify.close)
        conf = os.path.join(d.root, "ringqd.conf")
        open(conf, "w").close()
        env = dict(os.environ, NOTIFY_SOCKET=notify.path)
        log = open(d.logpath, "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen(["systemd-socket-activate", "-l", d.sock, "-E", "NOTIFY_SOCKET=" + notify.path,
                              RINGQD, "--state-dir", d.state,
                              "--config", conf, "--workers", "1"], env=env, stdout=log, stderr=log)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        # The socket file appears at bind, a moment before listen: wait
        # until it takes a connection.
        def connect():
            try:
                return Client(d.sock)
            except (FileNotFoundError, ConnectionRefusedError):
                return None
        self.assertFalse(notify.has("READY"), "ringqd starts on the first connection")
        c = wait_for(connect, what="the listening socket")
        self.addCleanup(c.close)
        self.assertTrue(c.call({"op": "ping"})["ok"])
        wait_for(lambda: notify.has("READY", "1"), what="READY=1")
        self.assertIn("(from systemd)", d.logtext())
        r = c.call({"op": "submit", "argv": ["true"]})
        self.assertTrue(r["ok"])
        self.assertEqual(c.call({"op": "wait", "id": r["id"]})["job"]["state"], "succeeded")
        c.close()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0)
        # The socket belongs to whoever passed it: it stays.
        self.assertTrue(os.path.exists(d.sock))

    def test_refuses_two_passed_sockets(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        os.makedirs(d.root, exist_ok=True)
        # systemd-socket-activate waits for a connection before it starts
        # the program; connect, then read ringqd's one-line refusal.
        log = open(d.logpath, "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen(["systemd-socket-activate", "-l", d.sock, "-l", d.sock + "2", RINGQD,
                              "--state-dir", d.state, "--config", "/dev/null"], stdout=log, stderr=log)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        wait_for(lambda: os.path.exists(d.sock), what="the listening socket")
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.sock)
        self.assertNotEqual(p.wait(20), 0)
        s.close()
        self.assertIn("exactly one", d.logtext())


class Reload(DaemonTest):
    daemon_kwargs = {"config": "high_water = 100\n"}

    def test_sighup_applies_new_limits(self):
        n = self.d.notify
        self.assertTrue(n.statuses()[-1].startswith("accepting; queued 0/100;"))
        with open(os.path.join(self.d.root, "ringqd.conf"), "w") as f:
            f.write("high_water = 7\nlow_water = 3\nmax_clients = 9\n")
        # The harness rewrites the file on start only; this reload reads it.
        os.kill(self.d.pid(), signal.SIGHUP)
        wait_for(lambda: [k for k, v in n.fields() if k in ("RELOADING", "READY")][-2:] == ["RELOADING", "READY"],
                 what="RELOADING then READY")
        wait_for(lambda: n.statuses()[-1].startswith("accepting; queued 0/7;"), what="new high water in STATUS")
        s = self.d.stats()
        self.assertEqual((s["high_water"], s["low_water"], s["max_clients"]), (7, 3, 1024))
        self.assertIn("max_clients changed; it takes effect after `ringq admin reexec`", self.d.logtext())

    def test_bad_config_on_reload_keeps_the_old(self):
        with open(os.path.join(self.d.root, "ringqd.conf"), "w") as f:
            f.write("high_water = 7\nhigh_water = many\n")
        os.kill(self.d.pid(), signal.SIGHUP)
        wait_for(lambda: "keeping the running configuration" in self.d.logtext(), what="the reload error")
        self.assertIn("ringqd.conf:2: high_water: 'many' is not a whole number", self.d.logtext())
        self.assertEqual(self.d.stats()["high_water"], 100)
        wait_for(lambda: [k for k, v in self.d.notify.fields() if k in ("RELOADING", "READY")][-1] == "READY",
                 what="READY after the failed reload")


class Units(unittest.TestCase):
    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
    def test_units_verify(self):
        import tempfile
        tmp = tempfile.mkdtemp(prefix="ringq-units-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for name, src in (("ringqd.service", "ringqd.service.in"), ("ringqd.socket", "ringqd.socket")):
            with open(os.path.join(SRC, "systemd", src)) as f:
                text = f.read()
            text = text.replace("@RINGQD_PATH@", os.path.abspath(RINGQD))
            text = text.replace("@RINGQ_DOCDIR@", "/usr/share/doc/ringq")
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", os.path.join(tmp, "ringqd.service"),
                            os.path.join(tmp, "ringqd.socket")], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", r.stderr)


if __name__ == "__main__":
    unittest.main()
