/*
 * pool_worker.c: a C worker that runs many requests at once, with init and done hooks.
 *
 *   usage: pool_worker [-n THREADS] PROXY [PROXY...]
 *
 * Serves the given proxy ids on the hubs in DCO_HUB (default 127.0.0.1:7790) with THREADS
 * (default 8) threads calling the handler at once (dco_worker_set_concurrency). Bodies:
 *   "sleep MS"  waits MS milliseconds, in steps of 10 ms, and answers "slept MS"; it stops
 *               early when the hub cancels the request (the caller cancelled or its time ran
 *               out): d->cancelled turns 1, and the answer would be dropped anyway.
 *   "status"    answers "status 201" with return code 201 beside the success.
 *   anything else is echoed.
 *
 * The init hook (Tuxedo's tpsvrinit) runs before the worker announces its proxies: here it
 * reads POOL_WORKER_FAIL_INIT and, if set to a number, fails with it, so the worker exits
 * without ever serving. The done hook (tpsvrdone) runs after SIGTERM or SIGINT, once the
 * requests in flight were answered, and prints what was served.
 *
 * Thread safety: the handler runs on several threads with the same `user` pointer, so the
 * shared counters are C11 atomics. Each call's delivery and reply belong to that call only.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dco.h"

static dco_worker *g_worker;

static void on_signal(int sig)
{
    (void)sig;
    dco_worker_stop(g_worker); /* async-signal-safe: sets an atomic flag */
}

/* Shared by all handler threads. */
struct state {
    atomic_long served;
    atomic_long running;
    atomic_long max_running;
    atomic_long cancelled;
    int initialised;
};

static int init_hook(void *user)
{
    struct state *s = user;
    const char *fail = getenv("POOL_WORKER_FAIL_INIT");
    if (fail != NULL && atoi(fail) != 0) {
        fprintf(stderr, "pool_worker: init: failing with %d on purpose\n", atoi(fail));
        return atoi(fail);
    }
    s->initialised = 1; /* open connections, read configuration... */
    printf("pool_worker: init\n");
    fflush(stdout);
    return 0;
}

static void done_hook(void *user)
{
    struct state *s = user;
    printf("pool_worker: done: served %ld, at most %ld at once, %ld cancelled while running\n",
           atomic_load(&s->served), atomic_load(&s->max_running), atomic_load(&s->cancelled));
    fflush(stdout);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int32_t handle(void *user, const dco_delivery *d, dco_reply *reply)
{
    struct state *s = user;
    long now = atomic_fetch_add(&s->running, 1) + 1;
    long max = atomic_load(&s->max_running);
    while (now > max && !atomic_compare_exchange_weak(&s->max_running, &max, now)) {
    }
    int32_t rc = 0;
    char text[64];
    int n;
    if (d->len > 6 && d->len < 20 && memcmp(d->body, "sleep ", 6) == 0) {
        char num[16];
        memcpy(num, d->body + 6, d->len - 6);
        num[d->len - 6] = '\0';
        long ms = atol(num), slept = 0;
        /* d->cancelled is written by another thread: read it as a volatile int. */
        while (slept < ms && !*(const volatile int32_t *)d->cancelled) {
            sleep_ms(10);
            slept += 10;
        }
        if (*(const volatile int32_t *)d->cancelled) {
            atomic_fetch_add(&s->cancelled, 1);
            n = snprintf(text, sizeof text, "cancelled after %ld ms", slept);
        } else {
            n = snprintf(text, sizeof text, "slept %ld", ms);
        }
        dco_reply_write(reply, (const uint8_t *)text, (size_t)n);
    } else if (d->len == 6 && memcmp(d->body, "status", 6) == 0) {
        n = snprintf(text, sizeof text, "status 201");
        dco_reply_write(reply, (const uint8_t *)text, (size_t)n);
        dco_reply_set_rcode(reply, 201);
    } else {
        dco_reply_write(reply, d->body, d->len);
    }
    atomic_fetch_add(&s->served, 1);
    atomic_fetch_sub(&s->running, 1);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned threads = 8;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        threads = (unsigned)atoi(argv[2]);
        i = 3;
    }
    int32_t proxies[64];
    size_t n = 0;
    for (; i < argc && n < 64; i++) {
        char *end = NULL;
        long p = strtol(argv[i], &end, 10);
        if (end == argv[i] || *end != '\0' || p < 0 || p > INT32_MAX) {
            fprintf(stderr, "pool_worker: '%s' is not a proxy id\n", argv[i]);
            return 2;
        }
        proxies[n++] = (int32_t)p;
    }
    if (n == 0) {
        fprintf(stderr, "usage: pool_worker [-n THREADS] PROXY [PROXY...]\n");
        return 2;
    }
    dco_worker *w = dco_worker_new(NULL, proxies, n);
    if (w == NULL) {
        fprintf(stderr, "pool_worker: dco_worker_new: %s\n", dco_last_error());
        return 1;
    }
    static struct state st; /* zero-initialised; atomics included */
    if (dco_worker_set_concurrency(w, threads) != DCO_OK) {
        fprintf(stderr, "pool_worker: %s\n", dco_last_error());
        dco_worker_free(w);
        return 2;
    }
    dco_worker_set_hooks(w, init_hook, done_hook, &st);

    g_worker = w;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int rc = dco_worker_run(w, handle, &st); /* init, serve, drain, done */

    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    g_worker = NULL;
    if (rc != DCO_OK) {
        fprintf(stderr, "pool_worker: dco_worker_run: %s (rcode %d): %s\n", dco_result_name(rc),
                (int)dco_last_rcode(), dco_last_error());
        dco_worker_free(w);
        return 3;
    }
    dco_worker_free(w);
    return 0;
}
