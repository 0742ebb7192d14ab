/* ringq-bench: the latency histogram and what it reads of the daemon's
 * process in /proc (CPU ticks from /proc/PID/stat, VmRSS from
 * /proc/PID/status). Linux only.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static unsigned hist_index(uint64_t v)
{
        unsigned e;

        if (v < HIST_SUB)
                return (unsigned)v;
        if (v >= (1ull << HIST_MAX_EXP))
                v = (1ull << HIST_MAX_EXP) - 1;
        e = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
        return HIST_SUB + (e - HIST_SUB_BITS) * HIST_SUB +
               (unsigned)((v >> (e - HIST_SUB_BITS)) - HIST_SUB);
}

/* The middle of bucket i. */
static uint64_t hist_value(unsigned i)
{
        unsigned e, sub;

        if (i < HIST_SUB)
                return i;
        e = (i - HIST_SUB) / HIST_SUB + HIST_SUB_BITS;
        sub = (i - HIST_SUB) % HIST_SUB;
        return ((uint64_t)(HIST_SUB + sub) << (e - HIST_SUB_BITS)) +
               ((1ull << (e - HIST_SUB_BITS)) >> 1);
}

void hist_add(hist *h, uint64_t ns)
{
        h->bucket[hist_index(ns)]++;
        h->count++;
        h->sum_ns += ns;
        if (ns > h->max_ns)
                h->max_ns = ns;
}

uint64_t hist_quantile(const hist *h, double q)
{
        uint64_t rank, seen = 0;

        if (h->count == 0)
                return 0;
        rank = (uint64_t)ceil(q * (double)h->count);
        if (rank < 1)
                rank = 1;
        if (rank >= h->count)
                return h->max_ns;
        for (unsigned i = 0; i < HIST_BUCKETS; i++) {
                seen += h->bucket[i];
                if (seen >= rank) {
                        uint64_t v = hist_value(i);

                        return v < h->max_ns ? v : h->max_ns;
                }
        }
        return h->max_ns;
}

json_t *bench_ms(int64_t ns)
{
        /* Microsecond resolution is what the clock and the buckets give. */
        return json_real(round((double)ns / 1000.0) / 1000.0);
}

static json_t *ms(uint64_t ns)
{
        return bench_ms((int64_t)ns);
}

json_t *hist_json(const hist *h)
{
        return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "count", (json_int_t)h->count,
                         "p50", ms(hist_quantile(h, 0.50)), "p90", ms(hist_quantile(h, 0.90)),
                         "p99", ms(hist_quantile(h, 0.99)), "p999", ms(hist_quantile(h, 0.999)),
                         "max", ms(h->max_ns), "mean", ms(h->count ? h->sum_ns / h->count : 0));
}

int proc_read(int pid, proc_sample *ret)
{
        char path[64], buf[4096], *p;
        unsigned long long utime, stime;
        proc_sample s = { .at_ns = now_ns() };
        FILE *f;
        size_t n;

        if (pid <= 0)
                return -EINVAL;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* The command name may hold spaces and parentheses: skip past the
         * last ')'. Then state is field 3; utime and stime are 14 and 15. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                         &utime, &stime) != 2)
                return -EBADMSG;
        s.cpu_ticks = utime + stime;

        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(buf, sizeof(buf), f))
                if (sscanf(buf, "VmRSS: %" SCNu64, &s.rss_kb) == 1)
                        break;
        fclose(f);
        s.ok = true;
        *ret = s;
        return 0;
}

json_t *proc_json(int pid, const proc_sample *a, const proc_sample *b)
{
        json_t *o = json_object();
        long hz = sysconf(_SC_CLK_TCK);

        if (!o)
                return NULL;
        json_object_set_new(o, "pid", pid > 0 ? json_integer(pid) : json_null());
        if (a->ok && b->ok && hz > 0) {
                double cpu = (double)(b->cpu_ticks - a->cpu_ticks) / (double)hz;
                double wall = (double)(b->at_ns - a->at_ns) / 1e9;

                json_object_set_new(o, "cpu_s", json_real(round(cpu * 100) / 100));
                json_object_set_new(o, "cpu_pct", json_real(wall > 0 ? round(cpu / wall * 1000) / 10 : 0));
        } else {
                json_object_set_new(o, "cpu_s", json_null());
                json_object_set_new(o, "cpu_pct", json_null());
        }
        json_object_set_new(o, "rss_start_kb", a->ok ? json_integer((json_int_t)a->rss_kb) : json_null());
        json_object_set_new(o, "rss_end_kb", b->ok ? json_integer((json_int_t)b->rss_kb) : json_null());
        return o;
}

int peer_pid(int fd)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        return cred.pid > 0 ? cred.pid : -ESRCH;
}

int bench_connect_sampled(const bench_opts *o, client **ret_c, int *pid, proc_sample *ret)
{
        int r = client_connect(o->socket, ret_c);

        if (r < 0) {
                fprintf(stderr, "ringq-bench: connect to %s: %s\n", o->socket, strerror(-r));
                return -ECANCELED;
        }
        *pid = o->pid;
        if (*pid <= 0 && (*pid = peer_pid(client_fd(*ret_c))) < 0)
                *pid = 0;
        (void)proc_read(*pid, ret);
        return 0;
}
