-- A database of schema 1, as ringqd 0.1.0 (schema 1) made it:
-- `sqlite3 queue.db .dump` after root submitted with --key nightly-backup,
-- a user (uid 999, gid 994) with --key shared-key, a failing job, a job
-- due and one delayed 2h (all --no-env, from /). The dump leaves out
-- PRAGMA user_version = 1; test_users.py sets it and gives uid 999's jobs
-- to a user of its own.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE jobs ( id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL DEFAULT 'default', state TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed','canceled')), priority INTEGER NOT NULL DEFAULT 0, argv TEXT NOT NULL, env TEXT, cwd TEXT NOT NULL DEFAULT '/', owner_uid INTEGER NOT NULL, owner_gid INTEGER NOT NULL, idem_key TEXT, submitted_at INTEGER NOT NULL, run_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 1, timeout_ms INTEGER, backoff_ms INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, signal INTEGER, reason TEXT, pid INTEGER);
INSERT INTO jobs VALUES(1,'default','succeeded',0,'["echo","root-done"]',NULL,'/',0,0,'nightly-backup',1796011698511,1796011698511,1796011698516,1796011698517,1,1,NULL,1000,0,NULL,'exit 0',NULL);
INSERT INTO jobs VALUES(2,'default','succeeded',0,'["echo","user-done"]',NULL,'/',999,994,'shared-key',1796011698524,1796011698524,1796011698526,1796011698528,1,1,NULL,1000,0,NULL,'exit 0',NULL);
INSERT INTO jobs VALUES(3,'default','failed',0,'["false"]',NULL,'/',999,994,NULL,1796011698534,1796011698534,1796011698536,1796011698537,1,1,NULL,1000,1,NULL,'exit 1',NULL);
INSERT INTO jobs VALUES(4,'default','queued',0,'["sh","-c","id -G; echo queued-in-v1"]',NULL,'/',999,994,'later',1796011698543,1796011699543,NULL,NULL,0,1,NULL,1000,NULL,NULL,NULL,NULL);
INSERT INTO jobs VALUES(5,'default','queued',0,'["echo","far"]',NULL,'/',999,994,NULL,1796011698552,1796018898552,NULL,NULL,0,1,NULL,1000,NULL,NULL,NULL,NULL);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('jobs',5);
CREATE UNIQUE INDEX jobs_idem ON jobs(queue, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX jobs_state ON jobs(state, id);
CREATE INDEX jobs_queue ON jobs(queue, id);
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;
CREATE VIEW queue_summary AS SELECT queue, state, count(*) AS jobs FROM jobs GROUP BY queue, state;
COMMIT;
