/* Start-up recovery: jobs the database says are running belong to a
 * ringqd that died. Their processes are killed and the jobs requeued or
 * failed as job_interruption (store.h) says: within max_interruptions
 * with their attempt given back. */
#pragma once

#include "store.h"

/* Returns how many jobs it recovered (for the interrupted counter) or a
 * negative errno; logs what it did. */
/* spare: the ids of jobs a re-exec handed over alive, left running. */
int recover_interrupted(struct store *st, const int64_t *spare, size_t nspare);

/* Kill every live process in the process group or session `pgid`,
 * provided it is the group of job `id` (checked through the job's
 * RINGQ_JOB_ID, so a reused pid is never hit). Waits up to timeout_ms
 * for them to be gone. Returns how many processes were signalled. */
int recover_kill_job(pid_t pgid, int64_t id, int timeout_ms);
