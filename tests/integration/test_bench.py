"""ringq-bench against the real daemon: each mode with tiny counts, so the
tool keeps working. The output must parse and add up; no timing asserts.

The binary comes from RINGQ_BENCH, else ringq-bench beside RINGQ.
"""
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import unittest

from harness import RINGQ, SLOW, DaemonTest, wait_for

RINGQ_BENCH = os.environ.get("RINGQ_BENCH") or os.path.join(os.path.dirname(RINGQ), "ringq-bench")

LOAD_KEYS = ["mode", "target", "connections", "depth", "sent", "accepted", "rejected", "errors", "lost",
             "elapsed_s", "accepted_per_s", "rejected_per_s"] + \
    ["%s_%s" % (h, p) for h in ("latency_ms", "reject_latency_ms")
     for p in ("count", "p50", "p90", "p99", "p999", "max")] + \
    ["daemon_pid", "daemon_cpu_s", "daemon_cpu_pct", "daemon_rss_start_kb", "daemon_rss_end_kb"]
E2E_KEYS = ["mode", "jobs", "accepted", "succeeded", "failed", "unfinished", "wall_s", "jobs_per_s"] + \
    ["%s_%s" % (h, p) for h in ("queue_wait_ms", "run_ms") for p in ("p50", "p90", "p99", "p999", "max")]


def kv(line):
    """The key=value summary line as a dict of strings."""
    out = {}
    for word in shlex.split(line):
        k, sep, v = word.partition("=")
        assert sep, "not key=value: %r in %r" % (word, line)
        out[k] = v
    return out


class BenchTest(DaemonTest):
    def bench(self, mode, *args, rc=0):
        r = subprocess.run([RINGQ_BENCH, mode, "-s", self.d.sock] + list(args), capture_output=True,
                           text=True, timeout=120 * SLOW)
        self.assertEqual(r.returncode, rc, "ringq-bench %s %s: rc=%d\nstdout=%s\nstderr=%s" %
                         (mode, " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def bench_kv(self, mode, *args):
        out = self.bench(mode, *args).stdout
        self.assertEqual(len(out.splitlines()), 1, out)
        return kv(out)

    def bench_json(self, mode, *args):
        return json.loads(self.bench(mode, "--json", *args).stdout)


class Submit(BenchTest):
    def test_kv_line_and_queued_jobs(self):
        s = self.bench_kv("submit", "-n", "50", "-c", "3", "-d", "4", "--delay", "1h")
        for k in LOAD_KEYS:
            self.assertIn(k, s)
        self.assertEqual((s["mode"], s["target"]), ("submit", "ringq"))
        self.assertEqual((int(s["sent"]), int(s["accepted"]), int(s["rejected"]), int(s["errors"])),
                         (50, 50, 0, 0))
        self.assertEqual(int(s["latency_ms_count"]), 50)
        self.assertEqual(int(s["daemon_pid"]), self.d.pid())
        self.assertGreater(int(s["daemon_rss_end_kb"]), 0)
        st = self.d.stats()
        self.assertEqual((st["queued"], st["running"], st["counters"]["accepted"]), (50, 0, 50))

    def test_json(self):
        j = self.bench_json("submit", "-n", "17", "-c", "2", "-d", "3", "--cmd", "sleep 1")
        self.assertEqual((j["accepted"], j["rejected"], j["errors"], j["lost"]), (17, 0, 0, 0))
        lat = j["latency_ms"]
        self.assertEqual(lat["count"], 17)
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p90"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["p999"])
        self.assertLessEqual(lat["p999"], lat["max"])
        self.assertEqual(j["daemon"]["pid"], self.d.pid())
        self.assertIsNotNone(j["daemon"]["cpu_s"])
        self.assertEqual(self.d.stats()["queued"], 17)
        jobs = self.d.call({"op": "list", "state": "queued", "limit": 100})["jobs"]
        self.assertEqual(len(jobs), 17)
        self.assertEqual(jobs[0]["argv"], ["sleep", "1"])
        self.assertGreater(jobs[0]["run_at"], jobs[0]["submitted_at"] + 3600 * 1000)

    def test_ping_queues_nothing(self):
        s = self.bench_kv("submit", "--ping", "-n", "40", "-c", "2", "-d", "4")
        self.assertEqual((int(s["accepted"]), int(s["errors"]), int(s["latency_ms_count"])), (40, 0, 40))
        st = self.d.stats()
        self.assertEqual((st["queued"], st["counters"]["accepted"]), (0, 0))
        r = subprocess.run([RINGQ_BENCH, "e2e", "--ping", "-s", self.d.sock], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 64, r.stderr)

    def test_count_bounds_the_run(self):
        j = self.bench_json("submit", "-n", "5", "-c", "4", "-d", "64", "-t", "30s")
        self.assertEqual(j["sent"], 5)
        self.assertEqual(self.d.stats()["counters"]["accepted"], 5)

    def test_usage(self):
        r = subprocess.run([RINGQ_BENCH, "submit", "-h"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--connections", r.stdout)
        for mode in ("e2e", "overload"):
            r = subprocess.run([RINGQ_BENCH, mode, "--help"], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0)
            self.assertIn("ringq-bench " + mode, r.stdout)
        for bad in (["nosuchmode"], ["submit", "-d", "65"], ["submit", "--rate", "10"],
                    ["e2e", "--target", "ringq"], ["submit", "--target", "memcached:x:1"], []):
            r = subprocess.run([RINGQ_BENCH] + bad, capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 64, bad)

    def test_unreachable(self):
        r = subprocess.run([RINGQ_BENCH, "submit", "-s", os.path.join(self.d.root, "nope.sock"), "-n", "1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 69, r.stderr)


class E2E(BenchTest):
    def test_jobs_all_succeed(self):
        s = self.bench_kv("e2e", "-n", "12", "--cmd", "true")
        for k in E2E_KEYS:
            self.assertIn(k, s)
        self.assertEqual((int(s["jobs"]), int(s["accepted"]), int(s["succeeded"]), int(s["failed"]),
                          int(s["unfinished"])), (12, 12, 12, 0, 0))
        c = self.d.stats()["counters"]
        self.assertEqual((c["succeeded"], c["failed"]), (12, 0))

    def test_json_and_failures(self):
        j = self.bench_json("e2e", "-n", "5", "-d", "2", "--cmd", "false")
        self.assertEqual((j["accepted"], j["succeeded"], j["failed"]), (5, 0, 5))
        self.assertEqual(j["run_ms"]["count"], 5)
        self.assertEqual(j["queue_wait_ms"]["count"], 5)


class One(BenchTest):
    def test_jobs_beside_spawns(self):
        s = self.bench_kv("one", "-n", "6", "--cmd", "true")
        self.assertEqual(int(s["jobs"]), 6)
        for h in ("job_ms", "spawn_ms", "submit_ms"):
            self.assertEqual(int(s[h + "_count"]), 6, h)
        self.assertIn("added_ms_p50", s)
        self.assertIn("job_path_ms_launch_p50", s)
        self.assertNotIn("fsync_ms_count", s)
        self.assertEqual(self.d.stats()["counters"]["succeeded"], 6)

    def test_fsync_floor(self):
        # Beside the state dir, on its filesystem; an unnamed file, so
        # nothing is left there after the run.
        floor = tempfile.mkdtemp(dir=self.d.root)
        j = self.bench_json("one", "-n", "5", "--fsync-dir", floor)
        f = j["fsync_ms"]
        self.assertEqual(f["count"], 5)
        self.assertGreater(f["p50"], 0)
        self.assertLessEqual(f["p50"], f["max"])
        self.assertAlmostEqual(j["submit_beyond_fsync_ms_p50"], j["submit_ms"]["p50"] - f["p50"], delta=0.0025)
        self.assertAlmostEqual(j["added_beyond_fsync_ms_p50"],
                               j["job_ms"]["p50"] - j["spawn_ms"]["p50"] - f["p50"], delta=0.0035)
        self.assertEqual(os.listdir(floor), [])

    def test_fsync_dir_errors(self):
        r = self.bench("one", "-n", "2", "--fsync-dir", os.path.join(self.d.root, "nope"), rc=69)
        self.assertIn("--fsync-dir", r.stderr)
        self.assertEqual(self.d.stats()["counters"]["accepted"], 0)
        r = self.bench("submit", "-n", "1", "--fsync-dir", self.d.root, rc=64)
        self.assertIn("--fsync-dir is for one and fsync", r.stderr)


class Fsync(unittest.TestCase):
    """The disk's floor, without a server."""

    def run_bench(self, *args, rc=0):
        r = subprocess.run([RINGQ_BENCH, "fsync"] + list(args), capture_output=True, text=True, timeout=60 * SLOW)
        self.assertEqual(r.returncode, rc, "stdout=%s\nstderr=%s" % (r.stdout, r.stderr))
        return r

    def test_back_to_back(self):
        with tempfile.TemporaryDirectory() as d:
            j = json.loads(self.run_bench("--fsync-dir", d, "-n", "20", "--json").stdout)
            self.assertEqual((j["mode"], j["dir"], j["fsyncs"], j["fsync_ms"]["count"]), ("fsync", d, 20, 20))
            self.assertGreater(j["fsync_ms"]["p50"], 0)
            self.assertGreater(j["fsyncs_per_s"], 0)
            self.assertEqual(os.listdir(d), [])
            s = kv(self.run_bench("--fsync-dir", d, "-n", "3").stdout)
            self.assertEqual((s["fsyncs"], s["fsync_ms_count"]), ("3", "3"))

    def test_usage(self):
        self.assertIn("fsync needs --fsync-dir", self.run_bench("-n", "2", rc=64).stderr)
        self.assertIn("without a server", self.run_bench("--fsync-dir", "/tmp", "-c", "2", rc=64).stderr)
        r = self.run_bench("--fsync-dir", "/nonexistent/floor", "-n", "2", rc=69)
        self.assertIn("/nonexistent/floor", r.stderr)


class Overload(BenchTest):
    daemon_kwargs = {"args": ["--high-water", "20", "--root-reserve-jobs", "0"]}

    def test_rejects_past_high_water(self):
        s = self.bench_kv("overload", "-r", "400", "-t", "1s", "-c", "2", "-d", "8")
        for k in LOAD_KEYS + ["offered_per_s", "unsent", "late"]:
            self.assertIn(k, s)
        self.assertEqual(s["mode"], "overload")
        self.assertEqual(int(s["accepted"]), 20)
        self.assertGreater(int(s["rejected"]), 0)
        self.assertEqual(int(s["reject_latency_ms_count"]), int(s["rejected"]))
        self.assertEqual(int(s["sent"]), int(s["accepted"]) + int(s["rejected"]) + int(s["errors"]) +
                         int(s["lost"]))
        st = self.d.stats()
        self.assertEqual(st["queued"], 20)
        self.assertEqual(st["counters"]["rejected_full"], int(s["rejected"]))

    def test_probe_sets_the_rate(self):
        j = self.bench_json("overload", "-t", "1s", "-n", "300", "-c", "1", "-d", "4")
        self.assertGreater(j["probed_capacity_per_s"], 0)
        self.assertGreater(j["offered_per_s"], 0)
        self.assertGreater(j["rejected"], 0)
        self.assertIn("rss_end_kb", j["daemon"])


class Peers(unittest.TestCase):
    """The beanstalkd and redis targets, against servers started here on
    Unix sockets (skipped where they are not installed)."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="ringq-bench-")
        self.addCleanup(shutil.rmtree, self.root, True)

    def start(self, argv, sock):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)

        def stop():
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.addCleanup(stop)
        wait_for(lambda: os.path.exists(sock) or p.poll() is not None, 10, what=argv[0])
        self.assertIsNone(p.poll(), "%s exited" % argv[0])
        return p

    def run_bench(self, *args):
        r = subprocess.run([RINGQ_BENCH] + list(args) + ["--json"], capture_output=True, text=True,
                           timeout=60 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    @unittest.skipUnless(shutil.which("beanstalkd"), "beanstalkd not installed")
    def test_beanstalkd(self):
        sock = os.path.join(self.root, "bs.sock")
        p = self.start(["beanstalkd", "-l", "unix:" + sock, "-b", self.root, "-f", "0"], sock)
        j = self.run_bench("submit", "--target", "beanstalkd:unix:" + sock, "-n", "30", "-c", "2", "-d", "4")
        self.assertEqual((j["accepted"], j["errors"]), (30, 0))
        self.assertEqual(j["daemon"]["pid"], p.pid)
        j = self.run_bench("overload", "--target", "beanstalkd:unix:" + sock, "-r", "100", "-t", "300ms")
        self.assertGreater(j["accepted"], 0)

    @unittest.skipUnless(shutil.which("redis-server"), "redis-server not installed")
    def test_redis(self):
        sock = os.path.join(self.root, "rd.sock")
        p = self.start(["redis-server", "--port", "0", "--unixsocket", sock, "--dir", self.root,
                        "--appendonly", "yes", "--appendfsync", "always", "--save", ""], sock)
        j = self.run_bench("submit", "--target", "redis:unix:" + sock, "-n", "30", "-c", "2", "-d", "4")
        self.assertEqual((j["accepted"], j["errors"]), (30, 0))
        self.assertEqual(j["daemon"]["pid"], p.pid)


if __name__ == "__main__":
    unittest.main()
