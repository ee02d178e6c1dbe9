/*
 * threads.c: calling from several threads.
 *
 *   usage: threads PROXY      (PROXY must be served by an echo worker: `dco worker echo`)
 *
 * Two ways, side by side:
 * - the plain calls (dco_line, dco_call_sync, ...) work on the calling thread's own session,
 *   made on first use and closed when the thread exits: threads never share it;
 * - dco_session_new gives an explicit session handle. A handle may move between threads but
 *   must not be used by two at the same time; here each thread makes and frees its own.
 * dco_last_error() and dco_last_rcode() are per thread too: one thread's failure does not show
 * in another thread.
 *
 * The hub comes from DCO_HUB. Exits 0 when every reply was right, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dco.h"

#define THREADS 4 /* of each kind */
#define CALLS 50

static int32_t g_proxy;

struct job {
    int index;
    int use_handle;   /* 0: this thread's session; 1: a dco_session_new handle */
    int ok;           /* replies that were right */
    char error[256];  /* the first problem seen */
};

static void note(struct job *j, const char *what, int64_t rc)
{
    if (j->error[0] == '\0')
        snprintf(j->error, sizeof j->error, "thread %d: %s: %s: %s", j->index, what,
                 rc < 0 ? dco_result_name((int32_t)rc) : "wrong reply", dco_last_error());
}

static void *run(void *arg)
{
    struct job *j = arg;
    dco_session *s = NULL;
    if (j->use_handle) {
        s = dco_session_new(NULL); /* NULL: the hubs in DCO_HUB */
        if (s == NULL) {
            note(j, "dco_session_new", DCO_E_INVALID);
            return NULL;
        }
    }
    for (int i = 0; i < CALLS; i++) {
        char text[64], reply[64];
        int len = snprintf(text, sizeof text, "thread %d call %d", j->index, i);
        int64_t n = s != NULL ? dco_session_write(s, (const uint8_t *)text, (size_t)len)
                              : dco_write((const uint8_t *)text, (size_t)len);
        if (n == DCO_OK)
            n = s != NULL ? dco_session_call_sync(s, g_proxy, 10000, (uint8_t *)reply, sizeof reply)
                          : dco_call_sync(g_proxy, 10000, (uint8_t *)reply, sizeof reply);
        if (n < 0) {
            note(j, "call", n);
            break;
        }
        if (n != len || memcmp(reply, text, (size_t)len) != 0) {
            note(j, "call", n);
            break;
        }
        j->ok++;
    }
    /* A failure on this thread only: an id this thread never issued. */
    int64_t bad = s != NULL ? dco_session_read_request(s, 999999999, 0, NULL, 0)
                            : dco_read_request(999999999, 0, NULL, 0);
    if (bad != DCO_E_UNKNOWN_ID || dco_last_error()[0] == '\0')
        note(j, "reading an unknown id", bad);
    dco_session_free(s); /* NULL does nothing */
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2 || atoi(argv[1]) < 0) {
        fprintf(stderr, "usage: threads PROXY\n");
        return 2;
    }
    g_proxy = (int32_t)atoi(argv[1]);

    /* The main thread succeeds once first, so its last error is empty... */
    int64_t n = dco_call_sync(g_proxy, 10000, NULL, 0); /* an empty body, a (NULL, 0) buffer */
    if (n != 0 || dco_last_error()[0] != '\0') {
        fprintf(stderr, "threads: first call: %lld %s\n", (long long)n, dco_last_error());
        return 1;
    }

    struct job jobs[2 * THREADS];
    pthread_t tids[2 * THREADS];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 2 * THREADS; i++) {
        jobs[i].index = i;
        jobs[i].use_handle = i >= THREADS;
        if (pthread_create(&tids[i], NULL, run, &jobs[i]) != 0) {
            fprintf(stderr, "threads: pthread_create failed\n");
            return 1;
        }
    }
    int failed = 0, ok = 0;
    for (int i = 0; i < 2 * THREADS; i++) {
        pthread_join(tids[i], NULL);
        ok += jobs[i].ok;
        if (jobs[i].error[0] != '\0') {
            fprintf(stderr, "threads: %s\n", jobs[i].error);
            failed = 1;
        }
    }
    /* ... and stays empty although every other thread failed once. */
    if (dco_last_error()[0] != '\0') {
        fprintf(stderr, "threads: another thread's error shows on main: %s\n", dco_last_error());
        failed = 1;
    }
    printf("threads: %d calls right out of %d\n", ok, 2 * THREADS * CALLS);
    return failed || ok != 2 * THREADS * CALLS;
}
