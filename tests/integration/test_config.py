"""ringqd --check-config and the configuration's errors: every error
named by its file and line (or option), exit 78 for a configuration
error and 64 for a usage error, the example config as shipped; <N>
priority prefixes only when stderr is the journal; ringq -V."""
import os
import re
import signal
import subprocess
import unittest

from harness import RINGQ, RINGQD, SLOW, WRAPPER, Daemon, wait_for

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "daemon", "ringqd.conf.example")
EX_USAGE, EX_CONFIG = 64, 78
PREFIX = re.compile(r"^<\d>", re.M)


class ConfigTest(unittest.TestCase):
    def setUp(self):
        # A Daemon for its temporary root, and for the valgrind check of
        # every ringqd run here when the tests run under valgrind.
        self.d = Daemon()
        self.addCleanup(self.d.cleanup)
        self.root = self.d.root

    def file(self, name, text):
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def ringqd(self, *args, env=None, stderr=subprocess.PIPE):
        cmd = [w.replace("{root}", self.root) for w in WRAPPER] + [RINGQD] + list(args)
        e = dict(os.environ)
        for k in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "STATE_DIRECTORY",
                  "RUNTIME_DIRECTORY"):
            e.pop(k, None)
        e.update(env or {})
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=60 * SLOW, env=e)

    def check(self, *args, **kw):
        return self.ringqd("--check-config", *args, **kw)

    def assertErrors(self, r, lines, status=EX_CONFIG):
        self.assertEqual(r.returncode, status, r.stderr)
        self.assertEqual(r.stderr.splitlines(), lines)
        self.assertEqual(r.stdout, "")


class CheckConfig(ConfigTest):
    def test_the_example_as_shipped_is_ok(self):
        r = self.check("-c", EXAMPLE)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "ringqd: %s: configuration ok\n" % EXAMPLE, ""))

    def test_the_example_shows_every_key_at_its_real_default(self):
        helptext = self.ringqd("--help").stdout
        defaults = dict(re.findall(r"\(key (\S+), default (.*)\)$", helptext, re.M))
        self.assertIn("workers", defaults)
        with open(EXAMPLE) as f:
            lines = f.read().splitlines()
        shown = dict(re.match(r"#(\S+) = (.*)$", l).groups() for l in lines if re.match(r"#\S+ = ", l))
        for key, default in defaults.items():
            self.assertIn(key, shown, "the example does not show %s" % key)
            # A default ringqd works out at start is shown as <how>.
            self.assertIn(shown[key], (default, "<%s>" % default), key)
        self.assertEqual(shown["workers"], "<number of CPUs>")
        self.assertIn("queue.batch.workers", shown)
        self.assertIn("queue.batch.high_water", shown)
        # Every value it shows is one ringqd takes, as the file would be
        # with them all uncommented.
        path = self.file("all.conf", "".join(l[1:] + "\n" for l in lines
                                             if re.match(r"#\S+ = [^<]", l)))
        with open(path) as f:
            self.assertIn("high_water = 10000\n", f.read())
        r = self.check("-c", path)
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_each_error_names_its_file_and_line(self):
        cases = [
            ("# ringqd.conf\nhigh_watr = 5\n", "2: unknown key 'high_watr'"),
            ("workers = 2\n\nworkers = two\n", "3: workers: 'two' is not a whole number"),
            ("high_water = 10\nlow_water = 10\n", "2: low_water (10) must be below high_water (10)"),
            ("low_water = 20\n# comment\nhigh_water = 10\n", "3: low_water (20) must be below high_water (10)"),
            ("workers = 2\nqueue.batch.workers = 3\n", "2: queue.batch.workers (3) is more than workers (2)"),
            ("queue.batch.workers = 1\nqueue.b@d.workers = 1\n",
             "2: unknown key 'queue.b@d.workers' (queue.<name>.workers or queue.<name>.high_water, a name of "
             "1-64 letters, digits, '_', '.' or '-')"),
            ("queue.batch.high_water = lots\n", "1: queue.batch.high_water: 'lots' is not a whole number"),
        ]
        for text, msg in cases:
            path = self.file("ringqd.conf", text)
            self.assertErrors(self.check("-c", path), ["%s:%s" % (path, msg)])

    def test_every_error_at_once(self):
        path = self.file("ringqd.conf", "high_watr = 5\nhigh_water = 10\nkill_grace = soon\nno equals sign\n"
                         "low_water = 20\nlog_level =\n")
        self.assertErrors(self.check("-c", path, "--max-clients", "0", "--workers", "two"), [
            path + ":1: unknown key 'high_watr'",
            path + ":3: kill_grace: 'soon' is not a duration (like 250ms, 30s, 5m, 2h, 7d)",
            path + ":4: expected 'key = value'",
            path + ":6: log_level: missing value",
            "--max-clients: 0 is out of range (1..65536)",
            "--workers: 'two' is not a whole number",
            path + ":5: low_water (20) must be below high_water (10)",
        ])

    def test_a_rule_between_keys_names_the_later_one(self):
        path = self.file("ringqd.conf", "low_water = 5\nhigh_water = 10\n")
        self.assertErrors(self.check("-c", path, "--high-water", "5"),
                          ["--high-water: low_water (5) must be below high_water (5)"])
        self.assertErrors(self.check("-c", path, "--low-water", "50"),
                          ["--low-water: low_water (50) must be below high_water (10)"])
        self.assertErrors(self.check("-c", path, "--low-water", "50", "--high-water", "20"),
                          ["--high-water: low_water (50) must be below high_water (20)"])
        path = self.file("q.conf", "queue.batch.workers = 4\n")
        self.assertErrors(self.check("-c", path, "--workers", "3"),
                          ["--workers: queue.batch.workers (4) is more than workers (3)"])

    def test_a_rejected_value_is_not_judged_by_a_rule(self):
        # high_water stays at its default when its line is rejected: a
        # low_water above that default is not a second error.
        path = self.file("ringqd.conf", "high_water = 20k\nlow_water = 15000\n")
        self.assertErrors(self.check("-c", path), [path + ":1: high_water: '20k' is not a whole number"])

    def test_a_named_file_must_exist(self):
        path = os.path.join(self.root, "missing.conf")
        self.assertErrors(self.check("-c", path), [path + ": No such file or directory"])
        self.assertErrors(self.check("-c", self.root), [self.root + ": not a file"])

    def test_checks_without_touching_anything(self):
        state = os.path.join(self.root, "no", "state")
        sock = os.path.join(self.root, "no-run", "ringq.sock")
        path = self.file("ringqd.conf", "state_dir = %s\nsocket = %s\n" % (state, sock))
        r = self.check("-c", path)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "ringqd: %s: configuration ok\n" % path, ""))
        self.assertFalse(os.path.exists(os.path.join(self.root, "no")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "no-run")))
        # Nor does it mind the lock and the socket of a running ringqd.
        d = Daemon(config="high_water = 50\n")
        self.addCleanup(d.cleanup)
        d.start()
        conf = self.file("same.conf", "state_dir = %s\nsocket = %s\nhigh_water = 60\n" % (d.state, d.sock))
        r = self.check("-c", conf)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertTrue(d.call({"op": "ping"})["ok"])
        self.assertEqual(d.stats()["high_water"], 50)

    def test_the_default_file_may_be_missing(self):
        # The default file is /etc/ringq/ringqd.conf, there or not; a
        # bad option is found either way.
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^ringqd: /etc/ringq/ringqd\.conf: (configuration ok|not present; "
                                   r"configuration ok with the defaults)\n$")
        r = self.check("--durability", "fast")
        self.assertEqual(r.returncode, EX_CONFIG)
        self.assertIn("--durability: 'fast' is not one of full, normal\n", r.stderr)


class StartAndReload(ConfigTest):
    def test_a_start_with_a_config_error_exits_78_before_the_state_dir(self):
        state = os.path.join(self.root, "state")
        path = self.file("ringqd.conf", "high_water = 10\nlow_water = 11\n")
        r = self.ringqd("-c", path, "--state-dir", state, "--socket", os.path.join(self.root, "s.sock"))
        self.assertErrors(r, [path + ":2: low_water (11) must be below high_water (10)"])
        r = self.ringqd("-c", "/dev/null", "--state-dir", state, "--workers", "two")
        self.assertErrors(r, ["--workers: 'two' is not a whole number"])
        self.assertFalse(os.path.exists(state))

    def test_usage_errors_exit_64_and_name_ringqd(self):
        for args, msg in ((["--bogus"], "unknown option '--bogus'"),
                          (["-x"], "unknown option '-x'"),
                          (["--check-config", "--workers"], "option '--workers' needs a value"),
                          (["-c"], "option '-c' needs a value"),
                          (["--check-config", "extra"], "unexpected argument 'extra'")):
            r = self.ringqd(*args)
            self.assertErrors(r, ["ringqd: " + msg, "Try 'ringqd --help'."], EX_USAGE)
            self.assertNotIn(RINGQD, r.stderr)

    def test_a_reload_with_errors_keeps_the_running_config(self):
        d = Daemon(config="high_water = 100\n")
        self.addCleanup(d.cleanup)
        d.start()
        path = os.path.join(d.root, "ringqd.conf")
        with open(path, "w") as f:
            f.write("high_water = 10\nlow_water = 20\nmax_clientz = 5\n")
        os.kill(d.pid(), signal.SIGHUP)
        wait_for(lambda: "keeping the running configuration" in d.logtext(), what="the reload's errors")
        log = d.logtext().splitlines()
        self.assertIn(path + ":3: unknown key 'max_clientz'", log)
        self.assertIn(path + ":2: low_water (20) must be below high_water (10)", log)
        self.assertIn("reload: 2 error(s); keeping the running configuration", log)
        self.assertEqual(d.stats()["high_water"], 100)


class Prefixes(ConfigTest):
    """<N> only when stderr is the stream $JOURNAL_STREAM names."""

    def error_line(self, journal_stream):
        rfd, wfd = os.pipe()
        st = os.fstat(wfd)
        env = {}
        if journal_stream == "match":
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        elif journal_stream == "other":
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + 1)
        try:
            r = self.ringqd("-c", "/dev/null", "--state-dir", os.path.join(self.root, "s"), "--kill-grace", "soon",
                            env=env, stderr=wfd)
        finally:
            os.close(wfd)
        with os.fdopen(rfd) as f:
            err = f.read()
        self.assertEqual(r.returncode, EX_CONFIG, err)
        return err

    def test_plain_lines_unless_stderr_is_the_journal(self):
        line = "--kill-grace: 'soon' is not a duration (like 250ms, 30s, 5m, 2h, 7d)\n"
        self.assertEqual(self.error_line(None), line)
        self.assertEqual(self.error_line("other"), line)
        self.assertEqual(self.error_line("match"), "<3>" + line)

    def test_a_daemon_logging_to_a_file_writes_plain_lines(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        d.start()
        jid = d.submit(["sh", "-c", "exit 3"])
        d.wait_job(jid)
        d.stop()
        log = d.logtext()
        self.assertIn("ringqd ", log)
        self.assertIn("job %d ended: failed" % jid, log)
        self.assertIsNone(PREFIX.search(log), log)


class Version(unittest.TestCase):
    def test_ringq_version_like_ringqd(self):
        want = subprocess.run([RINGQD, "-V"], capture_output=True, text=True).stdout.split()[1]
        for flag in ("-V", "--version"):
            r = subprocess.run([RINGQ, flag], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"^ringq %s \(protocol \d+\)\n$" % re.escape(want))


if __name__ == "__main__":
    unittest.main()
