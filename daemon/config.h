/* ringqd's configuration: defaults, the config file and flags.
 *
 * Every bound the daemon enforces is a field here, so an operator can see
 * and change each one. Parsing is pure (no I/O besides reading the file)
 * so it can be unit-tested and fuzzed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum durability {
        DURABILITY_FULL,   /* fsync before every acknowledgement */
        DURABILITY_NORMAL, /* survives a crash of ringqd, not of the host */
        _DURABILITY_MAX,
};

enum fair_share {
        FAIR_SHARE_USERS,  /* a free slot goes to the user running fewest jobs */
        FAIR_SHARE_OFF,    /* one global order: priority, run_at, id */
        _FAIR_SHARE_MAX,
};

/* Where a key got its value, so that an error of a rule between two keys
 * names the one set later: line of config.file, or a command-line option. */
struct config_origin {
        unsigned seq;   /* order of the sets; 0: never set (its default) */
        unsigned line;  /* 0: a command-line option (or config_set) */
        bool bad;       /* its last value was rejected: no rule judges it */
};

/* A queue's own settings (queue.<name>.workers, queue.<name>.high_water);
 * 0: none, the global ones apply. */
struct queue_cfg {
        char name[65];
        uint64_t workers, high_water;
        struct config_origin workers_from, high_water_from;
};

/* Keys of the table (config_key_at); config.c checks the count. */
#define CONFIG_NKEYS 29

/* Queue names: [A-Za-z0-9_.-]{1,64}. */
#define QUEUE_NAME_MAX 64
bool queue_name_valid(const char *name, size_t len);

struct config {
        char *state_dir;
        char *socket;
        uint64_t workers;
        uint64_t high_water;
        uint64_t low_water;        /* 0 until set: then 90% of high_water */
        uint64_t max_clients;
        uint64_t max_request_bytes;
        int64_t default_timeout_ms;
        int64_t kill_grace_ms;
        uint64_t max_output_bytes;
        int64_t retention_ms;
        uint64_t max_finished;
        int durability;
        int64_t shutdown_grace_ms;
        int64_t reexec_timeout_ms;      /* the settle step of a re-exec (reexec.h) */
        /* A job's runs cut short by ringqd stopping or crashing that give
         * the attempt back; past it an interruption spends one. 0: every
         * interruption spends its attempt. */
        uint64_t max_interruptions;
        int log_level;
        int64_t idle_timeout_ms;
        uint64_t max_pipeline;     /* unanswered requests per connection */
        uint64_t max_reply_bytes;  /* unread replies per connection */
        int64_t busy_timeout_ms;   /* how long a commit waits for a lock */
        uint64_t max_batch;        /* operations per group commit */
        /* Sharing one ringqd between users. */
        uint64_t max_clients_per_user;  /* one non-root uid's connections; 0: no cap */
        uint64_t root_reserve_clients;  /* connections beyond max_clients only root takes */
        uint64_t max_queued_per_user;   /* one non-root uid's queued jobs; 0: no cap */
        uint64_t root_reserve_jobs;     /* root's room above high_water */
        int fair_share;
        char *cgroup;                   /* "auto", "off" or a cgroup v2 directory */
        char *pam_service;              /* PAM service for login limits; "none": off */
        bool low_water_set, root_reserve_jobs_set;
        struct queue_cfg *queues;       /* in the order the file names them */
        size_t nqueues;
        char *file;                     /* the file read; NULL: none (missing) */
        unsigned nsets;
        struct config_origin origin[CONFIG_NKEYS]; /* indexed like config_key_at() */
};

/* The settings of the queue called name, or NULL. */
const struct queue_cfg *config_queue(const struct config *c, const char *name);

/* Which keys can change on reload; the rest need a restart. */
bool config_key_reloadable(const char *key);
/* On reload: give every restart-only key of nc the value it has in old,
 * calling changed(key) for each that the new file tried to change. */
void config_keep_restart_keys(struct config *nc, const struct config *old, void (*changed)(const char *key));

void config_init(struct config *c);
void config_done(struct config *c);

/* Set one key from its text form. On failure returns -EINVAL (unknown
 * key: -ENOENT) and *ret_err holds a malloc'd reason that starts with the
 * key ("workers: 0 is out of range (1..1024)"). */
int config_set(struct config *c, const char *key, const char *value, char **ret_err);

/* Set the key of a command-line option (--high-water...). On failure
 * *ret_err is "--<flag>: <reason>". */
int config_set_option(struct config *c, const char *flag, const char *value, char **ret_err);

/* Errors are reported all at once: *ret_err holds one line per error,
 * joined by '\n', and the functions return -EINVAL (or -ENOMEM). A
 * rejected line leaves its key as it was. */

/* Parse "key = value" lines with '#' comments. Each error names its line:
 * "<name>:<line>: <reason>". */
int config_parse_buffer(struct config *c, const char *buf, size_t len,
                        const char *name, char **ret_err);

/* Read and parse a file; a missing file is fine when missing_ok. */
int config_parse_file(struct config *c, const char *path, bool missing_ok, char **ret_err);

/* Fill derived values and check the rules between keys (low_water below
 * high_water, queue.<name>.workers at most workers). An error names where
 * the later of its two keys was set: "<file>:<line>: ", "--<flag>: ", or
 * nothing when neither was (config_set). */
int config_finalize(struct config *c, char **ret_err);

/* One command-line option that sets a key: --flag=value. */
struct config_option {
        const char *flag;
        const char *value;
};

/* A whole configuration, as ringqd starts with it: config_init, the file
 * at path (a missing one is fine when missing_ok), the options in order,
 * config_finalize. Every error of every step is in *ret_err. The caller
 * owns c afterwards, success or not (config_done). */
int config_load(struct config *c, const char *path, bool missing_ok, const struct config_option *opts,
                size_t nopts, char **ret_err);

/* Table access for --help and for mapping flags to keys. */
struct config_key {
        const char *key;
        const char *flag;      /* long option name */
        const char *help;
        const char *def;       /* default, as the user would write it */
};
extern const size_t config_nkeys;
const struct config_key *config_key_at(size_t i);
const char *durability_to_string(int d);
const char *fair_share_to_string(int f);
const struct config_key *config_key_by_flag(const char *flag);
