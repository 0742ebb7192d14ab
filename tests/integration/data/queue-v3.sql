-- A database of schema 3, as ringqd 0.1.0 at schema 3 made it:
-- `sqlite3 queue.db .dump` after root submitted (all --no-env, from /)
-- a job with --key v3-key that succeeded, one that failed (exit 1), one
-- delayed 2h, and `sleep 300`, which was running when ringqd was killed
-- with kill -9 (so the row says running, with a pid long gone). The dump
-- leaves out PRAGMA user_version = 3; test_interruptions.py sets it.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE jobs ( id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL DEFAULT 'default', state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','canceled')), priority INTEGER NOT NULL DEFAULT 0, argv TEXT NOT NULL, env TEXT, cwd TEXT NOT NULL DEFAULT '/', owner_uid INTEGER NOT NULL, owner_gid INTEGER NOT NULL, idem_key TEXT, submitted_at INTEGER NOT NULL, run_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 1, timeout_ms INTEGER, backoff_ms INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, signal INTEGER, reason TEXT, pid INTEGER, owner_groups TEXT, umask INTEGER, cpu_ms INTEGER, max_rss_kb INTEGER, queued_seq INTEGER NOT NULL DEFAULT 0);
INSERT INTO jobs VALUES(1,'default','succeeded',0,'["echo","done-in-v3"]',NULL,'/',0,0,'v3-key',1796023774707,1796023774707,1796023774712,1796023774718,1,1,NULL,1000,0,NULL,'exit 0',NULL,'[0]',NULL,1,5832,0);
INSERT INTO jobs VALUES(2,'default','failed',0,'["false"]',NULL,'/',0,0,NULL,1796023774723,1796023774723,1796023774725,1796023774732,1,1,NULL,1000,1,NULL,'exit 1',NULL,'[0]',NULL,1,5832,0);
INSERT INTO jobs VALUES(3,'default','queued',0,'["echo","later"]',NULL,'/',0,0,NULL,1796023774736,1796030974736,NULL,NULL,0,1,NULL,1000,NULL,NULL,NULL,NULL,'[0]',NULL,NULL,NULL,0);
INSERT INTO jobs VALUES(4,'default','running',0,'["sleep","300"]',NULL,'/',0,0,NULL,1796023774743,1796023774743,1796023774745,NULL,1,1,NULL,1000,NULL,NULL,NULL,2508,'[0]',NULL,NULL,NULL,0);
CREATE TABLE queues (name TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, changed_at INTEGER) WITHOUT ROWID;
CREATE TABLE job_deps (job_id INTEGER NOT NULL, after_id INTEGER NOT NULL, PRIMARY KEY (job_id, after_id)) WITHOUT ROWID;
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('jobs',4);
CREATE INDEX jobs_state ON jobs(state, id);
CREATE INDEX jobs_queue ON jobs(queue, id);
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;
CREATE VIEW queue_summary AS SELECT queue, state, count(*) AS jobs FROM jobs GROUP BY queue, state;
CREATE UNIQUE INDEX jobs_idem ON jobs(owner_uid, queue, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX job_deps_after ON job_deps(after_id);
COMMIT;
