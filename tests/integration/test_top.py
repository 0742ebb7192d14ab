"""ringq top against the real daemon: in a real terminal (a tmux pane of
80x24), what the screen shows and that every way out (q, Ctrl-C, SIGTERM,
ringqd going away) leaves the alternate screen, shows the cursor and
restores the tty modes; without a terminal, plain text frames."""
import json
import os
import pwd
import shlex
import shutil
import subprocess
import unittest

from harness import RINGQ, DaemonTest, wait_for

TMUX = shutil.which("tmux")
HOUR_MS = 3600 * 1000


class Tmux:
    """Runs top in its own tmux server (socket in the daemon's temp dir),
    so nothing is shared with a user's tmux or with other tests."""

    def tmux(self, *args):
        return subprocess.run([TMUX, "-S", self.tmux_sock] + list(args), capture_output=True, text=True,
                              timeout=10)

    def start_top(self, *top_args, cols=80, rows=24):
        """Run `ringq top` in a new pane. The shell around it ignores
        SIGINT/SIGTERM itself (a trap, so top still gets the default), then
        prints top's exit status and whether the tty modes are as before."""
        self.tmux_sock = os.path.join(self.d.root, "tmux.sock")
        top = " ".join(shlex.quote(a) for a in [RINGQ, "-s", self.d.sock, "top"] + list(top_args))
        script = ('before=$(stty -g); trap : INT TERM; %s; rc=$?; '
                  '[ "$(stty -g)" = "$before" ] && tty=same || tty=changed; '
                  'echo "EXIT=$rc TTY=$tty"; sleep 60' % top)
        r = self.tmux("new-session", "-d", "-x", str(cols), "-y", str(rows), "-s", "top",
                      "sh -c " + shlex.quote(script))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.tmux, "kill-server")

    def screen(self):
        # -J joins lines the terminal wrapped, so a line drawn too wide
        # shows as one long line.
        return self.tmux("capture-pane", "-p", "-J", "-t", "top").stdout

    def pane(self, fmt):
        return self.tmux("display-message", "-p", "-t", "top", fmt).stdout.strip()

    def wait_screen(self, *needles):
        return wait_for(lambda: (lambda s: s if all(n in s for n in needles) else None)(self.screen()),
                        what="%s on the screen" % (needles,))

    def top_pid(self):
        shell = self.pane("#{pane_pid}")
        return int(subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()[0])

    def assert_full_screen(self):
        self.assertEqual(self.pane("#{alternate_on} #{cursor_flag}"), "1 0", "alternate screen, cursor hidden")

    def assert_restored(self, code):
        s = self.wait_screen("EXIT=")
        self.assertIn("EXIT=%d TTY=same" % code, s)
        self.assertEqual(self.pane("#{alternate_on} #{cursor_flag}"), "0 1", "normal screen, cursor shown")
        self.assertNotIn("queued  [", s)  # the frame went with the alternate screen
        return s


@unittest.skipUnless(TMUX, "needs tmux")
class TopScreen(Tmux, DaemonTest):
    def test_screen_at_80x24_and_ctrl_c(self):
        running = [self.d.submit(["sleep", "30"]) for _ in range(2)]
        for jid in running:
            self.d.wait_state(jid, "running")
        for _ in range(3):
            self.d.submit(["true"], delay_ms=HOUR_MS)
        self.start_top("--interval", "200ms")
        s = self.wait_screen("accepting", "3/10000", "sleep 30", "(low water 9000)")
        self.assert_full_screen()
        lines = s.splitlines()
        self.assertEqual(len(lines), 24)
        for line in lines:
            self.assertLessEqual(len(line), 80, line)
        self.assertRegex(s, r"workers +\[#+\] +2/2")
        self.assertRegex(s, r"queued +\[#\.+\|\.+\] +3/10000")
        for word in ("p50", "p99", "max", "commit", "queue_wait", "run", "connections", "uptime", "wal",
                     "refused", "pruned", "rates/s", "accepted"):
            self.assertIn(word, s)
        for jid in running:
            self.assertRegex(s, r"(?m)^ *%d +%s +\S+ +sleep 30$" % (jid, pwd.getpwuid(os.getuid()).pw_name))
        self.tmux("send-keys", "-t", "top", "C-c")
        self.assert_restored(130)

    def test_resize_uses_the_space(self):
        self.d.submit(["sleep", "30"])
        self.start_top("--interval", "200ms")
        self.wait_screen("sleep 30")
        self.tmux("resize-window", "-t", "top", "-x", "120", "-y", "40")
        wait_for(lambda: self.pane("#{window_width}") == "120" and
                 max(len(l) for l in self.screen().splitlines()) > 80, what="a wider frame")
        s = self.screen()
        self.assertEqual(max(len(l) for l in s.splitlines()), 120)  # the clock sits at the right edge
        self.assertIn("accepting", s)
        self.tmux("send-keys", "-t", "top", "q")
        self.assert_restored(0)

    def test_sigterm(self):
        self.start_top("--interval", "200ms")
        self.wait_screen("accepting")
        os.kill(self.top_pid(), 15)
        self.assert_restored(128 + 15)

    def test_daemon_going_away(self):
        self.start_top("--interval", "200ms")
        self.wait_screen("accepting")
        self.d.stop()
        s = self.assert_restored(69)
        self.assertIn("connection closed by ringqd", s)


@unittest.skipUnless(TMUX, "needs tmux")
class TopRejecting(Tmux, DaemonTest):
    daemon_kwargs = {"workers": 1, "args": ["--high-water", "2", "--low-water", "1", "--root-reserve-jobs", "0"]}

    def test_rejecting_and_q(self):
        blocker = self.d.submit(["sleep", "30"])
        self.d.wait_state(blocker, "running")
        self.d.submit(["true"])
        self.d.submit(["true"])
        r = self.d.call({"op": "submit", "argv": ["true"]})
        self.assertEqual(r["error"], "queue_full")
        self.start_top("--interval", "200ms")
        s = self.wait_screen("rejecting", "2/2  (low water 1)")
        self.assert_full_screen()
        self.assertRegex(s, r"queued +\[#+\] +2/2")
        self.assertRegex(s, r"workers +\[#+\] +1/1")
        self.tmux("send-keys", "-t", "top", "q")
        self.assert_restored(0)


class TopPlain(DaemonTest):
    def test_frames_without_a_terminal(self):
        jid = self.d.submit(["sleep", "30"])
        self.d.wait_state(jid, "running")
        r = self.run_ok("top", "-n", "2", "--interval", "100ms", env={"COLUMNS": "80"})
        self.assertNotIn("\033", r.stdout)
        frames = r.stdout.rstrip("\n").split("\n\n")
        self.assertEqual(len(frames), 2, r.stdout)
        for f in frames:
            self.assertTrue(f.startswith("ringq top   accepting"), f)
            self.assertRegex(f, r"queued +\[\.+\|\.+\] +0/10000  \(low water 9000\)")
            self.assertRegex(f, r"(?m)^ *%d +%s +\S+ +sleep 30$" % (jid, pwd.getpwuid(os.getuid()).pw_name))
            self.assertLessEqual(max(len(l) for l in f.splitlines()), 80)
        # Rates need two samples: the first frame has none yet.
        self.assertIn("accepted -", frames[0])
        self.assertRegex(frames[1], r"accepted \d+\.\d")

    def test_json(self):
        r = self.run_ok("top", "--json", "-n", "1")
        replies = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(replies), 2)
        self.assertIn("counters", replies[0])
        self.assertEqual(replies[1]["jobs"], [])

    def test_usage_and_unreachable(self):
        r = self.d.cli("top", "-s", os.path.join(self.d.root, "nobody.sock"), "-n", "1")
        self.assertEqual(r.returncode, 69)
        self.assertIn("cannot connect to", r.stderr)
        self.assertEqual(self.d.cli("top", "-n", "0").returncode, 64)
        self.assertEqual(self.d.cli("top", "--interval", "soon").returncode, 64)
        self.assertIn("--interval", self.run_ok("top", "--help").stdout)


if __name__ == "__main__":
    unittest.main()
