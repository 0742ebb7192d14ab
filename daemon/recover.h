/* Start-up recovery: jobs the database says are running belong to a
 * ringqd that died. Their processes are killed and the jobs requeued
 * (attempts left) or failed with reason "interrupted". */
#pragma once

#include "store.h"

/* Returns 0 or a negative errno; logs what it did. */
int recover_interrupted(struct store *st);

/* Kill every live process in the process group or session `pgid`,
 * provided it is the group of job `id` (checked through the job's
 * RINGQ_JOB_ID, so a reused pid is never hit). Waits up to timeout_ms
 * for them to be gone. Returns how many processes were signalled. */
int recover_kill_job(pid_t pgid, int64_t id, int timeout_ms);
