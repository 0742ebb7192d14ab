#!/usr/bin/env python3
# Writes the seed corpora in corpus/<target>/ (run from tests/fuzz/);
# the files are what is kept: rerun after changing this script.
import os
root = "corpus"
def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

ops = {
 "ping": '{"op":"ping"}',
 "submit-min": '{"op":"submit","argv":["true"]}',
 "submit-full": '{"op":"submit","argv":["/bin/sh","-c","echo hi; exit 3"],"env":{"PATH":"/usr/bin:/bin","HOME":"/root","EMPTY":""},"cwd":"/tmp","queue":"q1","priority":-1000,"delay_ms":250,"timeout_ms":30000,"max_attempts":3,"backoff_ms":100,"key":"idem-1","tag":"s1"}',
 "submit-run-at": '{"op":"submit","argv":["sleep","1"],"run_at":1700000000000,"priority":1000,"max_attempts":1000,"backoff_ms":3600000,"timeout_ms":1}',
 "submit-unicode": '{"op":"submit","argv":["echo","h\\u00e9llo \\ud83d\\ude00","\\t\\n"],"queue":"\\u00fcml","key":"k\\u00e9y"}',
 "status": '{"op":"status","id":1}',
 "list": '{"op":"list"}',
 "list-full": '{"op":"list","state":"queued","queue":"q1","limit":1000,"after_id":0}',
 "list-states": '{"op":"list","state":"canceled","limit":1}',
 "cancel": '{"op":"cancel","id":1}',
 "retry": '{"op":"retry","id":1}',
 "wait": '{"op":"wait","id":1}',
 "wait-timeout": '{"op":"wait","id":1,"timeout_ms":0}',
 "stats": '{"op":"stats"}',
 "output": '{"op":"output","id":1,"stream":"stderr"}',
 "submit-umask": '{"op":"submit","argv":["true"],"umask":63}',
 "submit-after": '{"op":"submit","argv":["true"],"after":[1,2],"queue":"q.1"}',
 "pause": '{"op":"pause","queue":"q1"}',
 "resume": '{"op":"resume"}',
 "queues": '{"op":"queues"}',
 "reexec": '{"op":"reexec"}',
}
errors = [
    b'{"op": "ping"',
    b'[1,2]',
    b'{"op":"submit"}',
    b'{"op":"submit","argv":[]}',
    b'{"op":"submit","argv":["x"],"cwd":"tmp"}',
    b'{"op":"submit","argv":["x"],"priority":1001}',
    b'{"op":"submit","argv":["x"],"delay_ms":-1}',
    b'{"op":"submit","argv":["x"],"delay_ms":1,"run_at":5}',
    b'{"op":"submit","argv":["x"],"timout_ms":5}',
    b'{"op":"submit","argv":["a\\u0000b"]}',
    b'{"op":"submit","argv":["x"],"env":{"A=B":"c"}}',
    b'{"op":"frobnicate"}',
    b'{"op":"status"}',
    b'{"op":"status","id":"7"}',
    b'{"op":"status","id":123456789}',
    b'{"op":"list","state":"done"}',
    b'{"op":"list","limit":1001}',
    b'{"op":"ping","op":"ping"}',
    b'\xff\xfe{}',
    b'{"op":"submit","argv":[""]}',
    b'{"op":"submit","argv":["x"],"queue":"a b"}',
    b'{"op":"submit","argv":["x"],"env":{"":"v"}}',
    b'{"op":"submit","argv":["x"],"env":{"A\\u0000":"v"}}',
    b'{"op":"submit","argv":["x"],"max_attempts":0}',
    b'{"op":"submit","argv":["x"],"timeout_ms":0}',
    b'{"op":"submit","argv":["x"],"backoff_ms":3600001}',
    b'{"op":"submit","argv":["x"],"run_at":253402300800000}',
    b'{"op":"submit","argv":["x"],"key":""}',
    b'{"op":"wait","id":1,"timeout_ms":-1}',
    b'{"op":"cancel","id":0}',
    b'{"op":"retry","id":9223372036854775807}',
    b'{"op":"list","after_id":-1}',
    b'{"op":1}',
    b'{"tag":5}',
    b'"ping"',
    b'',
]
tags = ['null', 'true', 'false', '0', '-17', '9223372036854775807', '1.5e300', '-0.0', '"t"',
        '"\\u2603\\n"', '[1,[2,{"a":null}]]', '{"x":[1,2],"y":{"z":"w"}}', '[]', '{}']

for name, line in ops.items():
    put("proto", "op-" + name, line)
    put("dispatch", "op-" + name, line + "\n")
for i, line in enumerate(errors):
    put("proto", "err-%02d" % i, line)
    put("dispatch", "err-%02d" % i, line + b"\n")
for i, t in enumerate(tags):
    put("proto", "tag-%02d" % i, '{"op":"ping","tag":%s}' % t)
    put("proto", "tag-err-%02d" % i, '{"op":"status","tag":%s}' % t)
put("dispatch", "tags", "".join('{"op":"ping","tag":%s}\n' % t for t in tags))

# Pipelines: whole conversations on one connection.
put("dispatch", "pipe-submit-status-cancel-retry",
    '{"op":"submit","argv":["true"],"tag":1}\n'
    '{"op":"submit","argv":["false"],"key":"k","queue":"q","tag":2}\n'
    '{"op":"submit","argv":["false"],"key":"k","queue":"q","tag":3}\n'
    '{"op":"status","id":1,"tag":4}\n'
    '{"op":"list","queue":"q","tag":5}\n'
    '{"op":"cancel","id":1,"tag":6}\n'
    '{"op":"cancel","id":1,"tag":7}\n'
    '{"op":"wait","id":1,"tag":8}\n'
    '{"op":"retry","id":1,"tag":9}\n'
    '{"op":"retry","id":2,"tag":10}\n'
    '{"op":"stats","tag":11}\n')
put("dispatch", "pipe-wait-timeout",
    '{"op":"submit","argv":["true"],"delay_ms":100000}\n'
    '{"op":"wait","id":1,"timeout_ms":5}\n'
    '{"op":"ping"}\n')
put("dispatch", "pipe-wait-forever",
    '{"op":"submit","argv":["true"]}\n{"op":"wait","id":1}\n{"op":"ping"}\n')
put("dispatch", "pipe-mixed-errors",
    '{"op":"ping"}\n[1]\n{"op":"nope","tag":"t"}\n{"op":"status","id":1}\n{"op":"ping"\n')
put("dispatch", "pipe-many",
    "".join('{"op":"submit","argv":["true"],"priority":%d,"tag":%d}\n' % (i * 10 - 500, i) if i % 2 == 0
            else '{"op":"ping","tag":%d}\n' % i for i in range(100)))
put("dispatch", "crlf-blank", '\n\r\n{"op":"ping","tag":1}\r\n\r\n{"op":"stats"}\r\n')
put("dispatch", "no-final-newline", '{"op":"ping"}\n{"op":"ping"}')
put("dispatch", "too-large", '{"op":"ping","tag":"' + "x" * 1100 + '"}\n{"op":"ping"}\n')
put("dispatch", "too-large-unterminated", '{"op":"ping"}\n' + "y" * 1500)
put("dispatch", "empty", b"")
put("dispatch", "deps-and-pause",
    '{"op":"submit","argv":["true"],"delay_ms":100000,"tag":1}\n'
    '{"op":"submit","argv":["true"],"after":[1],"tag":2}\n'
    '{"op":"submit","argv":["true"],"after":[99],"tag":3}\n'
    '{"op":"pause","queue":"default","tag":4}\n'
    '{"op":"cancel","id":1,"tag":5}\n'
    '{"op":"status","id":2,"tag":6}\n'
    '{"op":"queues","tag":7}\n'
    '{"op":"resume","tag":8}\n'
    '{"op":"list","limit":1000,"tag":9}\n')
put("dispatch", "keys-and-output",
    '{"op":"submit","argv":["true"],"key":"k","delay_ms":100000,"umask":18,"tag":1}\n'
    '{"op":"submit","argv":["true"],"key":"k","tag":2}\n'
    '{"op":"output","id":1,"tag":3}\n'
    '{"op":"output","id":1,"stream":"stderr","tag":4}\n'
    '{"op":"output","id":99,"tag":5}\n'
    '{"op":"output","id":1,"stream":"stdin","tag":6}\n')

# Jobs that run. The harness's exec hook runs, by argv[0] alone: "false"
# /bin/false, "sleep" /bin/sleep argv[1] seconds (1..50 ms), "stubborn" a
# sleep that ignores SIGTERM, "missing" no program at all (spawn: ENOENT),
# anything else /bin/true. A line "@@" starts the next connection (as
# root, every second one is uid 65534): a later connection sees jobs that
# are running or have ended.
put("dispatch", "run-true-false-sleep",
    '{"op":"submit","argv":["true"],"tag":1}\n'
    '{"op":"submit","argv":["false"],"tag":2}\n'
    '{"op":"submit","argv":["sleep","0.02"],"tag":3}\n'
    '{"op":"wait","id":1,"tag":4}\n{"op":"wait","id":2,"tag":5}\n{"op":"wait","id":3,"tag":6}\n'
    '{"op":"status","id":3,"tag":7}\n{"op":"output","id":2,"tag":8}\n'
    '{"op":"list","state":"succeeded","tag":9}\n{"op":"list","tag":10}\n{"op":"stats","tag":11}\n')
put("dispatch", "run-retry-attempts",
    '{"op":"submit","argv":["false"],"max_attempts":3,"backoff_ms":5,"tag":1}\n'
    '{"op":"submit","argv":["sleep","0.01"],"timeout_ms":1,"max_attempts":2,"backoff_ms":1,"tag":2}\n'
    '{"op":"wait","id":1,"tag":3}\n{"op":"wait","id":2,"tag":4}\n'
    '{"op":"retry","id":1,"tag":5}\n{"op":"status","id":1,"tag":6}\n{"op":"wait","id":1,"tag":7}\n'
    '{"op":"retry","id":2,"tag":8}\n{"op":"list","state":"failed","tag":9}\n')
put("dispatch", "run-missing-and-timeout",
    '{"op":"submit","argv":["missing"],"max_attempts":2,"backoff_ms":0,"tag":1}\n'
    '{"op":"submit","argv":["stubborn","0.02"],"timeout_ms":5,"tag":2}\n'
    '{"op":"submit","argv":["true"],"timeout_ms":1,"tag":3}\n'
    '{"op":"wait","id":1,"tag":4}\n{"op":"wait","id":2,"tag":5}\n{"op":"wait","id":3,"tag":6}\n'
    '{"op":"output","id":1,"stream":"stderr","tag":7}\n{"op":"list","tag":8}\n')
# Cancel a running job: the job starts while the first connection waits
# (a wait with a timeout holds it open), and the third (root again)
# cancels it; a cancel of one that ended is invalid_state.
put("dispatch", "cancel-running",
    '{"op":"submit","argv":["sleep","0.05"],"tag":1}\n'
    '{"op":"submit","argv":["true"],"tag":2}\n'
    '{"op":"wait","id":1,"timeout_ms":10,"tag":3}\n'
    '@@\n'
    '{"op":"status","id":1}\n{"op":"cancel","id":1}\n'
    '@@\n'
    '{"op":"cancel","id":1,"tag":4}\n{"op":"status","id":1,"tag":5}\n{"op":"wait","id":1,"tag":6}\n'
    '{"op":"cancel","id":2,"tag":7}\n{"op":"retry","id":1,"tag":8}\n{"op":"retry","id":1,"tag":9}\n'
    '{"op":"wait","id":1,"tag":10}\n')
put("dispatch", "cancel-running-other-user",
    '@@\n'
    '{"op":"submit","argv":["sleep","0.04"],"max_attempts":2,"backoff_ms":1}\n'
    '{"op":"wait","id":1,"timeout_ms":5}\n'
    '@@\n'
    '{"op":"list","state":"running"}\n{"op":"cancel","id":1}\n{"op":"wait","id":1}\n{"op":"status","id":1}\n')
# Dependencies: a chain that succeeds, one whose head fails (the cascade
# cancels each in turn, a commit apart), one whose head is canceled, and
# retries that must wait for the head to be retried first.
put("dispatch", "after-chain-success",
    '{"op":"submit","argv":["sleep","0.01"],"tag":1}\n'
    '{"op":"submit","argv":["true"],"after":[1],"tag":2}\n'
    '{"op":"submit","argv":["true"],"after":[1,2],"tag":3}\n'
    '{"op":"status","id":3,"tag":4}\n{"op":"wait","id":3,"tag":5}\n'
    '{"op":"submit","argv":["true"],"after":[3],"tag":6}\n{"op":"wait","id":4,"tag":7}\n'
    '{"op":"list","tag":8}\n')
put("dispatch", "after-chain-failure",
    '{"op":"submit","argv":["false"],"tag":1}\n'
    '{"op":"submit","argv":["true"],"after":[1],"tag":2}\n'
    '{"op":"submit","argv":["true"],"after":[2],"tag":3}\n'
    '{"op":"wait","id":3,"tag":4}\n{"op":"status","id":2,"tag":5}\n'
    '{"op":"retry","id":3,"tag":6}\n{"op":"retry","id":2,"tag":7}\n'
    '{"op":"submit","argv":["true"],"after":[1],"tag":8}\n{"op":"status","id":4,"tag":9}\n'
    '{"op":"retry","id":1,"tag":10}\n{"op":"retry","id":2,"tag":11}\n{"op":"wait","id":2,"tag":12}\n')
put("dispatch", "after-chain-cancel",
    '{"op":"submit","argv":["true"],"delay_ms":100000,"tag":1}\n'
    '{"op":"submit","argv":["sleep","0.01"],"after":[1],"tag":2}\n'
    '{"op":"submit","argv":["true"],"after":[2],"key":"k","tag":3}\n'
    '{"op":"status","id":2,"tag":4}\n{"op":"cancel","id":1,"tag":5}\n'
    '{"op":"wait","id":3,"tag":6}\n{"op":"list","state":"canceled","tag":7}\n'
    '{"op":"retry","id":1,"tag":8}\n{"op":"retry","id":2,"tag":9}\n{"op":"retry","id":3,"tag":10}\n'
    '{"op":"cancel","id":1,"tag":11}\n{"op":"wait","id":3,"tag":12}\n')
put("dispatch", "after-other-user",
    '{"op":"submit","argv":["true"]}\n{"op":"wait","id":1}\n'
    '@@\n'
    '{"op":"submit","argv":["true"],"after":[1]}\n{"op":"submit","argv":["true"]}\n'
    '{"op":"submit","argv":["true"],"after":[2,99]}\n'
    '@@\n'
    '{"op":"submit","argv":["false"],"after":[1,2]}\n{"op":"wait","id":3}\n')
# Pause and resume around submits: nothing starts in a paused queue (nor
# anywhere while every queue is paused) until a resume, which comes in a
# later connection (in the same one it would run as soon as the waits
# before it park). Two slots: the third job of a queue is the one held.
put("dispatch", "pause-queue",
    '{"op":"pause","queue":"q","tag":1}\n'
    '{"op":"submit","argv":["true"],"queue":"q","tag":2}\n'
    '{"op":"submit","argv":["true"],"tag":3}\n'
    '{"op":"wait","id":2,"tag":4}\n{"op":"wait","id":1,"timeout_ms":20,"tag":5}\n'
    '{"op":"queues","tag":6}\n{"op":"status","id":1,"tag":7}\n'
    '@@\n'
    '{"op":"pause","queue":"q"}\n{"op":"queues"}\n{"op":"submit","argv":["true"],"queue":"q"}\n'
    '@@\n'
    '{"op":"status","id":1,"tag":8}\n{"op":"resume","queue":"q","tag":9}\n'
    '{"op":"wait","id":1,"tag":10}\n{"op":"wait","id":3,"tag":11}\n{"op":"queues","tag":12}\n')
put("dispatch", "pause-all",
    '{"op":"pause","tag":1}\n'
    '{"op":"submit","argv":["true"],"tag":2}\n'
    '{"op":"submit","argv":["true"],"queue":"q","tag":3}\n'
    '{"op":"resume","queue":"q","tag":4}\n'
    '{"op":"wait","id":2,"timeout_ms":20,"tag":5}\n{"op":"status","id":1,"tag":6}\n{"op":"queues","tag":7}\n'
    '@@\n'
    '{"op":"queues"}\n{"op":"submit","argv":["true"],"queue":"q"}\n'
    '@@\n'
    '{"op":"pause","queue":"q","tag":8}\n{"op":"resume","tag":9}\n'
    '{"op":"wait","id":1,"tag":10}\n{"op":"wait","id":2,"tag":11}\n{"op":"wait","id":3,"tag":12}\n'
    '{"op":"list","tag":13}\n')
put("dispatch", "pause-running-and-retry",
    '{"op":"submit","argv":["sleep","0.03"],"queue":"q","tag":1}\n'
    '{"op":"submit","argv":["false"],"queue":"q","max_attempts":2,"backoff_ms":1,"tag":2}\n'
    '{"op":"submit","argv":["true"],"queue":"q","tag":3}\n'
    '{"op":"wait","id":1,"timeout_ms":5,"tag":4}\n{"op":"pause","queue":"q","tag":5}\n'
    '{"op":"wait","id":1,"tag":6}\n{"op":"wait","id":2,"timeout_ms":30,"tag":7}\n'
    '{"op":"status","id":2,"tag":8}\n{"op":"status","id":3,"tag":9}\n'
    '@@\n'
    '{"op":"list","queue":"q"}\n'
    '@@\n'
    '{"op":"resume","queue":"q","tag":10}\n{"op":"wait","id":2,"tag":11}\n{"op":"wait","id":3,"tag":12}\n'
    '{"op":"retry","id":2,"tag":13}\n{"op":"wait","id":2,"tag":14}\n')

# Config files.
every = """# every key, each with a valid value
state_dir = /var/lib/ringq
socket = /run/ringq/ringq.sock
workers = 4
high_water = 10000
low_water = 9000
max_clients = 1024
max_request_bytes = 64K
default_timeout = 1h
kill_grace = 10s
max_output_bytes = 16MiB
retention = 7d
max_finished = 100000
durability = full
shutdown_grace = 30s
log_level = info
idle_timeout = 60s
max_pipeline = 64
max_reply_bytes = 1MiB
busy_timeout = 1s
max_batch = 4096
max_clients_per_user = 64
root_reserve_clients = 16
max_queued_per_user = 0
root_reserve_jobs = 500
fair_share = users
cgroup = auto
pam_service = ringq
"""
put("config", "every-key", every)
put("config", "every-key-crlf", every.replace("\n", "\r\n"))
put("config", "comments", "# only comments\n\n   # indented\n\t\nworkers = 2 # trailing comment\n")
put("config", "durations", "default_timeout = 250ms\nkill_grace = 0\nretention = 5m\nshutdown_grace = 2h\nidle_timeout = 100ms\nbusy_timeout = 30\n")
put("config", "sizes", "max_request_bytes = 256\nmax_output_bytes = 0\nmax_reply_bytes = 1G\n")
put("config", "other-values", "durability = normal\nlog_level = debug\nlog_level = 3\nhigh_water = 1\nlow_water = 0\n")
put("config", "no-final-newline", "workers = 1")
put("config", "bad-unknown-key", "wrokers = 4\n")
put("config", "bad-no-eq", "workers 4\n")
put("config", "bad-missing-value", "workers =\n")
put("config", "bad-range", "workers = 0\nmax_clients = 65537\n")
put("config", "bad-relative-path", "state_dir = var/lib\n")
put("config", "bad-water", "high_water = 10\nlow_water = 10\n")
put("config", "bad-nul", b"workers = 4\nx\x00y = 1\n")
put("config", "bad-number", "workers = 4x\nhigh_water = -1\nmax_batch = 18446744073709551616\n")
put("config", "bad-duration", "retention = 7y\n")

# Once a bug (dc2610c): an error message cut inside a UTF-8 sequence got
# no reply and the connection closed. Now every line gets its reply.
put("proto", "bug-utf8-jansson-text", b'{"op":"ping","tag":"\\u0\xc3\xa9"}')
put("proto", "bug-utf8-unknown-field", b'{"op":"ping","' + b'a' * 63 + '\u00e9'.encode() + b'":1}')
put("dispatch", "bug-utf8-after-submit", b'{"op":"submit","argv":["true"]}\n{"op":"ping","tag":"\\u0\xc3\xa9"}\n')

# Several connections in one input, split at lines "@@" (the harness's,
# never sent): as root, every second one is uid 65534.
put("dispatch", "conns-owner-checks",
    '{"op":"submit","argv":["true"],"tag":"root"}\n'
    '{"op":"submit","argv":["true"],"delay_ms":1000}\n'
    '@@\n'
    '{"op":"status","id":1}\n{"op":"wait","id":1}\n{"op":"cancel","id":1}\n'
    '{"op":"retry","id":1}\n{"op":"list"}\n{"op":"submit","argv":["id"]}\n'
    '@@\n'
    '{"op":"status","id":3}\n{"op":"cancel","id":3}\n{"op":"retry","id":3}\n{"op":"cancel","id":2}\n'
    '@@\n'
    '{"op":"retry","id":2}\n{"op":"list","state":"canceled"}\n')
# Read your writes: a status, list or wait after a submit, cancel or
# retry of the same connection sees it (and a cancel and a retry of one
# job in one group commit each answer with the state they left).
put("dispatch", "ryw-cancel-then-read",
    '{"op":"submit","argv":["true"],"queue":"q","key":"a"}\n'
    '{"op":"cancel","id":1}\n{"op":"status","id":1}\n{"op":"wait","id":1,"timeout_ms":0}\n'
    '{"op":"list","state":"canceled"}\n{"op":"list","state":"queued"}\n'
    '{"op":"retry","id":1}\n{"op":"status","id":1}\n{"op":"list","queue":"q","limit":1}\n'
    '{"op":"cancel","id":1}\n{"op":"retry","id":1}\n{"op":"cancel","id":1}\n{"op":"wait","id":1}\n')
# A re-exec asked for in process (the harness's ringqd has no binary to
# run again): refused, and the jobs around it run as ever.
put("dispatch", "reexec-refused",
    '{"op":"submit","argv":["sleep","0.02"],"tag":1}\n{"op":"reexec","tag":2}\n'
    '{"op":"submit","argv":["true"],"tag":3}\n{"op":"wait","id":1,"tag":4}\n{"op":"wait","id":2,"tag":5}\n'
    '@@\n'
    '{"op":"reexec","tag":6}\n{"op":"submit","argv":["true"],"tag":7}\n{"op":"wait","id":3,"tag":8}\n')
put("dispatch", "ryw-submit-then-list",
    '{"op":"submit","argv":["true"]}\n{"op":"list"}\n'
    '{"op":"submit","argv":["true"],"queue":"q"}\n{"op":"submit","argv":["true"],"queue":"q","key":"k"}\n'
    '{"op":"list","queue":"q","after_id":1}\n{"op":"submit","argv":["true"],"queue":"q","key":"k"}\n'
    '{"op":"list","queue":"q","limit":1,"after_id":2}\n{"op":"list","state":"queued","limit":2}\n')
put("dispatch", "ryw-wait-then-cancel",
    '{"op":"submit","argv":["true"]}\n{"op":"wait","id":1}\n{"op":"status","id":1}\n'
    '{"op":"cancel","id":1}\n{"op":"status","id":1}\n{"op":"retry","id":1}\n'
    '{"op":"wait","id":1,"timeout_ms":0}\n')
put("dispatch", "ryw-other-user",
    '{"op":"submit","argv":["true"]}\n{"op":"submit","argv":["true"],"key":"k"}\n'
    '@@\n'
    '{"op":"submit","argv":["true"],"key":"k"}\n{"op":"submit","argv":["true"]}\n'
    '{"op":"cancel","id":3}\n{"op":"list"}\n{"op":"status","id":3}\n{"op":"cancel","id":1}\n'
    '@@\n'
    '{"op":"list","state":"canceled"}\n{"op":"retry","id":3}\n{"op":"list"}\n')
put("dispatch", "queue-full",
    "".join('{"op":"submit","argv":["true"],"tag":%d}\n' % i for i in range(40)) + '{"op":"stats"}\n')
