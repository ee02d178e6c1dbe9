/*
 * worker.c: a worker written in C.
 *
 *   usage: worker PROXY [PROXY...]
 *
 * Serves the given proxy ids on the hubs in DCO_HUB (default 127.0.0.1:7790). For each request
 * the handler replies with the body in upper case, except when the body starts with "fail":
 * then it reports an application failure. Its return code is the number after "fail" ("fail 17"
 * -> 17), or 42 when there is none; the caller gets DCO_E_APP_FAIL, dco_last_rcode() gives the
 * code, and the reply text ends up in the caller's dco_last_error(). Three more bodies show the
 * other outcomes: "retry" asks the hub to try again later (dco_reply_retry) until the third
 * attempt; "forward P TEXT" hands TEXT on to proxy P (dco_reply_forward), whose answer goes to
 * the caller; "time" answers the milliseconds the hub still waits (dco_delivery.remaining_ms).
 *
 * SIGTERM or SIGINT stops it: the signal handler calls dco_worker_stop, which only stores an
 * atomic flag (no lock, no allocation, no dco_last_error update on success), so it is
 * async-signal-safe. dco_worker_run then returns after the request in hand, within about
 * 100 ms when idle, and the worker prints how many requests it served and exits 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dco.h"

/* Set once before the signal handlers are installed, read by them. */
static dco_worker *g_worker;

static void on_signal(int sig)
{
    (void)sig;
    /* Async-signal-safe: dco_worker_stop only sets an atomic flag. */
    dco_worker_stop(g_worker);
}

/* What the handler keeps between requests; passed as dco_worker_run's `user` pointer. */
struct counters {
    unsigned long served;
    unsigned long failed;
};

/* The handler: called on the thread running dco_worker_run, one request at a time. The
 * delivery and the reply are valid only during this call; the body is NOT NUL-terminated. */
static int32_t handle(void *user, const dco_delivery *d, dco_reply *reply)
{
    struct counters *c = user;
    c->served++;

    if (d->len >= 4 && memcmp(d->body, "fail", 4) == 0) {
        /* Application failure: the return code is the number after "fail", else 42. */
        int32_t code = 42;
        char num[10];
        size_t k = 0, i = 4;
        while (i < d->len && d->body[i] == ' ')
            i++;
        while (i < d->len && k + 1 < sizeof num && isdigit(d->body[i]))
            num[k++] = (char)d->body[i++]; /* at most 9 digits: fits an int32_t */
        num[k] = '\0';
        if (k > 0 && strtol(num, NULL, 10) != 0)
            code = (int32_t)strtol(num, NULL, 10);
        char text[64];
        int n = snprintf(text, sizeof text, "failed on purpose with code %d", (int)code);
        dco_reply_write(reply, (const uint8_t *)text, (size_t)n);
        c->failed++;
        return code; /* non-zero: DCO_E_APP_FAIL for the caller, with this rcode */
    }

    if (d->len == 5 && memcmp(d->body, "retry", 5) == 0) {
        /* "The far side is down, try later": the hub retries with backoff, per the proxy's
         * policy. This worker answers on the third attempt. */
        char text[64];
        int n;
        if (d->attempt < 3) {
            n = snprintf(text, sizeof text, "not now (attempt %u)", (unsigned)d->attempt);
            dco_reply_write(reply, (const uint8_t *)text, (size_t)n);
            dco_reply_retry(reply);
            return 0;
        }
        n = snprintf(text, sizeof text, "done on attempt %u", (unsigned)d->attempt);
        dco_reply_write(reply, (const uint8_t *)text, (size_t)n);
        return 0;
    }

    if (d->len > 8 && memcmp(d->body, "forward ", 8) == 0) {
        /* "forward P TEXT": hand TEXT on to proxy P; its answer goes to our caller. */
        char num[10];
        size_t k = 0, i = 8;
        while (i < d->len && k + 1 < sizeof num && isdigit(d->body[i]))
            num[k++] = (char)d->body[i++];
        num[k] = '\0';
        while (i < d->len && d->body[i] == ' ')
            i++;
        dco_reply_write(reply, d->body + i, d->len - i);
        dco_reply_forward(reply, k > 0 ? (int32_t)strtol(num, NULL, 10) : -1);
        return 0;
    }

    if (d->len == 4 && memcmp(d->body, "time", 4) == 0) {
        /* The time the hub still waits for this answer (-1: no limit). */
        char text[32];
        int n = snprintf(text, sizeof text, "%lld", (long long)d->remaining_ms);
        dco_reply_write(reply, (const uint8_t *)text, (size_t)n);
        return 0;
    }

    /* Success: the body in upper case, written in chunks (each dco_reply_write appends). */
    uint8_t chunk[256];
    size_t done = 0;
    while (done < d->len) {
        size_t n = d->len - done < sizeof chunk ? d->len - done : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = (uint8_t)toupper(d->body[done + i]);
        if (dco_reply_write(reply, chunk, n) != DCO_OK)
            return 1;
        done += n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: worker PROXY [PROXY...]\n");
        return 2;
    }
    int32_t proxies[64];
    size_t n = 0;
    for (int i = 1; i < argc && n < sizeof proxies / sizeof proxies[0]; i++) {
        char *end = NULL;
        long p = strtol(argv[i], &end, 10);
        if (end == argv[i] || *end != '\0' || p < INT32_MIN || p > INT32_MAX) {
            fprintf(stderr, "worker: '%s' is not a proxy id\n", argv[i]);
            return 2;
        }
        proxies[n++] = (int32_t)p;
    }

    /* NULL hubs: use DCO_HUB. The proxy ids are copied; a negative one is refused here. */
    dco_worker *w = dco_worker_new(NULL, proxies, n);
    if (w == NULL) {
        fprintf(stderr, "worker: dco_worker_new: %s\n", dco_last_error());
        return 1;
    }
    /* Let the hub hand us up to 16 requests before we answer them (the default is 1024). */
    dco_worker_set_capacity(w, 16);

    g_worker = w;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    printf("worker: serving %zu proxy id(s)\n", n);
    fflush(stdout);

    struct counters c = {0, 0};
    int rc = dco_worker_run(w, handle, &c); /* blocks until dco_worker_stop */

    /* Ignore further signals before freeing the worker the handler points at. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    g_worker = NULL;
    if (rc != DCO_OK) {
        fprintf(stderr, "worker: dco_worker_run: %s: %s\n", dco_result_name(rc), dco_last_error());
        dco_worker_free(w);
        return 1;
    }
    dco_worker_free(w);
    printf("worker: stopped after %lu request(s), %lu failed on purpose\n", c.served, c.failed);
    return 0;
}
