"""ringq stats --prometheus against the real daemon: promtool finds
nothing to report in it, durations are summaries in seconds whose _count
and _sum are every sample since start, counters and gauges carry the
values of the JSON stats, and every field of the JSON has a metric of
its own name."""
import json
import re
import shutil
import subprocess
import unittest

from harness import DaemonTest

PROMTOOL = shutil.which("promtool")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse(text):
    """{(name, ((label, value), ...)): float} and {family: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        key = (m.group(1), labels)
        assert key not in samples, "sample twice: %r" % line
        samples[key] = float(m.group(3))
    return samples, types


class Metrics(DaemonTest):
    daemon_kwargs = {"workers": 2, "config": "queue.slow.workers = 1\nqueue.slow.high_water = 50\n"}

    def value(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        self.assertIn(key, self.samples, "no sample %s%s in:\n%s" % (name, labels, self.text))
        return self.samples[key]

    def test_promtool_and_values(self):
        if not PROMTOOL:
            self.skipTest("promtool is not installed (Debian package prometheus)")
        ran = [self.d.submit(["true"]) for _ in range(3)]
        ran.append(self.d.submit(["sh", "-c", "exit 3"]))
        ran += [self.d.submit(["sh", "-c", "sleep 0.05"], queue="slow") for _ in range(2)]
        for jid in ran:
            self.d.wait_job(jid)
        self.run_ok("pause", "slow")
        self.d.submit(["true"], queue="slow")         # held by the pause
        self.d.submit(["true"], delay_ms=3600000)     # keeps default listed
        r = self.d.call({"op": "submit", "argv": ["true"], "after": [999999]})
        self.assertEqual(r["error"], "not_found")     # rejected: other
        submitted = len(ran) + 2

        st = json.loads(self.run_ok("stats", "--json").stdout)
        self.text = self.run_ok("stats", "--prometheus").stdout
        self.samples, types = parse(self.text)

        p = subprocess.run([PROMTOOL, "check", "metrics"], input=self.text, capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""), self.text)

        # Every family has help and a type, and none is a stand-in for a
        # field this ringq has no name for.
        helps = [l for l in self.text.splitlines() if l.startswith("# HELP ")]
        self.assertEqual(len(helps), len(types))
        for h in helps:
            self.assertNotIn("no description", h)
            self.assertGreater(len(h.split(" ", 3)[3]), 15, h)
        for name in types:
            self.assertNotRegex(name, r"_ms($|_)")

        # Counters, each against the JSON and what the test did.
        c = st["counters"]
        self.assertEqual(types["ringq_jobs_accepted_total"], "counter")
        self.assertEqual(self.value("ringq_jobs_accepted_total"), submitted)
        self.assertEqual(c["accepted"], submitted)
        self.assertEqual(self.value("ringq_jobs_rejected_total", reason="other"), 1)
        self.assertEqual(self.value("ringq_jobs_rejected_total", reason="full"), 0)
        self.assertEqual(self.value("ringq_jobs_started_total"), len(ran))
        self.assertEqual(self.value("ringq_jobs_finished_total", state="succeeded"), len(ran) - 1)
        self.assertEqual(self.value("ringq_jobs_finished_total", state="failed"), 1)
        self.assertEqual(self.value("ringq_connections_refused_total", reason="max_clients"), 0)
        self.assertEqual(self.value("ringq_store_commits_total"), c["commits"])
        self.assertGreater(c["commits"], 0)
        counters = [n for n, t in types.items() if t == "counter"]
        self.assertTrue(all(n.endswith("_total") for n in counters), counters)
        # Each JSON counter is one sample: as many samples as counters.
        self.assertEqual(sum(1 for (n, _) in self.samples if n in counters), len(c))

        # Summaries: quantiles from the window, _count and _sum since
        # start, in seconds.
        run = st["latency_ms"]["run"]
        self.assertEqual(types["ringq_job_run_seconds"], "summary")
        self.assertEqual(run["count"], len(ran))
        self.assertEqual(self.value("ringq_job_run_seconds_count"), len(ran))
        self.assertAlmostEqual(self.value("ringq_job_run_seconds_sum"), run["sum_us"] / 1e6, places=6)
        # Two jobs slept 50 ms each.
        self.assertGreaterEqual(self.value("ringq_job_run_seconds_sum"), 0.1)
        self.assertAlmostEqual(self.value("ringq_job_run_seconds", quantile="0.5"), run["p50"] / 1000, places=6)
        self.assertAlmostEqual(self.value("ringq_job_run_seconds", quantile="0.99"), run["p99"] / 1000, places=6)
        self.assertAlmostEqual(self.value("ringq_job_run_seconds", quantile="1"), run["max"] / 1000, places=6)
        self.assertEqual(self.value("ringq_job_queue_wait_seconds_count"), len(ran))
        self.assertEqual(self.value("ringq_store_commit_seconds_count"), st["latency_ms"]["commit"]["count"])
        for step in ("launch", "start_commit", "exec", "run", "drain", "end_commit"):
            self.assertEqual(self.value("ringq_job_path_seconds_count", step=step), len(ran), step)
            self.assertEqual(st["job_path_ms"][step]["count"], len(ran), step)
        self.assertEqual(types["ringq_job_path_seconds"], "summary")
        for kind in ("latency_ms", "job_path_ms"):
            for name, lat in st[kind].items():
                self.assertLessEqual(lat["samples"], lat["count"], name)
                self.assertGreaterEqual(lat["sum_us"], 0, name)

        # Gauges.
        self.assertEqual(self.value("ringq_accepting"), 1)
        self.assertEqual(self.value("ringq_queued"), 2)
        self.assertEqual(self.value("ringq_workers"), 2)
        self.assertEqual(self.value("ringq_max_clients"), st["max_clients"])
        self.assertGreater(self.value("ringq_wal_bytes"), 0)
        self.assertGreater(self.value("ringq_db_bytes"), 0)
        self.assertGreater(self.value("ringq_uptime_seconds"), 0)
        self.assertLess(self.value("ringq_uptime_seconds"), 600)
        self.assertEqual(types["ringq_queue_paused"], "gauge")
        self.assertEqual(self.value("ringq_queue_paused", queue="slow"), 1)
        self.assertEqual(self.value("ringq_queue_paused", queue="default"), 0)
        self.assertEqual(self.value("ringq_queue_queued", queue="slow"), 1)
        self.assertEqual(self.value("ringq_queue_queued", queue="default"), 1)
        self.assertEqual(self.value("ringq_queue_workers", queue="slow"), 1)
        self.assertEqual(self.value("ringq_queue_high_water", queue="slow"), 50)
        self.assertEqual(self.value("ringq_build_info", version=st["version"]), 1)
        # What a re-exec keeps and what it counts (test_reexec_cli.py
        # checks them after one).
        self.assertEqual(self.value("ringq_pid"), self.d.pid())
        self.assertEqual(self.value("ringq_reexecs"), 0)
        self.assertEqual(types["ringq_jobs_adopted_total"], "counter")
        self.assertEqual(self.value("ringq_jobs_adopted_total"), 0)
        self.assertEqual(self.value("ringq_reexec_failures_total"), 0)

    def test_count_and_sum_outlive_the_window(self):
        # Each committed submit is a commit-latency sample: 1100 of them
        # overflow the window of 1024, and _count and _sum keep them all.
        n = 1100
        c = self.d.client()
        self.addCleanup(c.close)
        for start in range(0, n, 50):
            for _ in range(50):
                c.send({"op": "submit", "argv": ["true"], "delay_ms": 3600000})
            for _ in range(50):
                self.assertTrue(c.recv()["ok"])
        commit = json.loads(self.run_ok("stats", "--json").stdout)["latency_ms"]["commit"]
        self.assertEqual(commit["samples"], 1024)
        self.assertGreaterEqual(commit["count"], n)
        self.text = self.run_ok("stats", "--prometheus").stdout
        self.samples, _ = parse(self.text)
        # Nothing commits between the two calls: the queue only waits.
        self.assertEqual(self.value("ringq_store_commit_seconds_count"), commit["count"])
        self.assertAlmostEqual(self.value("ringq_store_commit_seconds_sum"), commit["sum_us"] / 1e6, places=6)
        self.assertGreater(commit["sum_us"], 0)
        self.assertEqual(self.value("ringq_jobs_accepted_total"), n)
        self.assertEqual(self.value("ringq_queue_queued", queue="default"), n)


if __name__ == "__main__":
    unittest.main()
