/*
 * bad_input.c: every bad-input path of the C ABI, and the result code each must give.
 *
 *   usage: bad_input LIVE_HUB CLOSED_HUB QUOTA_HUB ECHO_PROXY BLOCK_PROXY
 *
 * LIVE_HUB    a running hub with an echo worker serving ECHO_PROXY;
 * CLOSED_HUB  host:port where nothing listens;
 * QUOTA_HUB   a running hub started with --quota 2;
 * BLOCK_PROXY a proxy id nobody serves yet: this program serves it itself, from a thread, with
 *             a handler that holds "block" requests until told to let them go (so "no reply yet"
 *             is certain, not a race).
 *
 * Run by tests/c_abi.rs. Every check is an assertion: a failed one prints its line and the
 * program exits 1 after running the rest. Every check of a failing call also checks that
 * dco_last_error() names the same code, and every check of a succeeding call that it is empty.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dco.h"

static const char *g_live, *g_closed, *g_quota;
static int32_t g_echo, g_block;
static const int32_t UNSERVED = 777777;

/* ---------------------------------------------------------------------------------------- */
/* Assertions                                                                               */

static int checks, failures;

static void failed(int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failed(int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    failures++;
    fprintf(stderr, "bad_input.c:%d: FAILED: %s: ", line, expr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

/* The last error must be a non-NULL string; for a failure it starts with "<NAME>:". */
static void check_last_error(int line, const char *expr, int64_t rc)
{
    const char *e = dco_last_error();
    if (e == NULL) {
        failed(line, expr, "dco_last_error() is NULL");
        return;
    }
    if (rc >= 0) {
        if (e[0] != '\0')
            failed(line, expr, "succeeded but dco_last_error() is \"%s\"", e);
        return;
    }
    const char *name = dco_result_name((int32_t)rc);
    size_t n = strlen(name);
    if (strncmp(e, name, n) != 0 || e[n] != ':')
        failed(line, expr, "failed with %s but dco_last_error() is \"%s\"", name, e);
}

/* `expr` must return exactly `want`; the last error must agree. */
#define EXPECT_RC(expr, want)                                                                  \
    do {                                                                                       \
        int64_t got_ = (int64_t)(expr);                                                        \
        int64_t want_ = (int64_t)(want);                                                       \
        checks++;                                                                              \
        if (got_ != want_)                                                                     \
            failed(__LINE__, #expr, "returned %" PRId64 " (%s), want %" PRId64 " (%s): %s",   \
                   got_, got_ <= 0 ? dco_result_name((int32_t)got_) : "-", want_,            \
                   want_ <= 0 ? dco_result_name((int32_t)want_) : "-", dco_last_error());    \
        else                                                                                   \
            check_last_error(__LINE__, #expr, got_);                                           \
    } while (0)

/* `expr` must return a value > 0 (a request id, a length), stored in `var`; last error empty. */
#define EXPECT_POS(var, expr)                                                                  \
    do {                                                                                       \
        var = (expr);                                                                          \
        checks++;                                                                              \
        if (!(var > 0))                                                                        \
            failed(__LINE__, #expr, "returned %" PRId64 " (%s), want > 0: %s", (int64_t)var,  \
                   dco_result_name((int32_t)var), dco_last_error());                          \
        else                                                                                   \
            check_last_error(__LINE__, #expr, 0);                                              \
    } while (0)

#define EXPECT(cond)                                                                           \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(cond))                                                                           \
            failed(__LINE__, #cond, "is false (last error: %s)", dco_last_error());            \
    } while (0)

#define EXPECT_STR(a, b)                                                                       \
    do {                                                                                       \
        const char *a_ = (a), *b_ = (b);                                                       \
        checks++;                                                                              \
        if (a_ == NULL || strcmp(a_, b_) != 0)                                                 \
            failed(__LINE__, #a, "is \"%s\", want \"%s\"", a_ ? a_ : "(NULL)", b_);            \
    } while (0)

/* A NULL pointer the compiler cannot see through (so -Wnonnull-style checks stay quiet and
 * the library really receives NULL at run time). */
static void *volatile g_null;
#define NUL ((void *)g_null)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Result codes and their names                                                             */

#define CODE(c) {c, #c}
static const struct {
    int32_t code;
    const char *name;
} CODES[] = {
    CODE(DCO_OK),          CODE(DCO_E_INVALID),   CODE(DCO_E_TIMEOUT),
    CODE(DCO_E_NO_ROUTE),  CODE(DCO_E_NOT_CONNECTED), CODE(DCO_E_BUSY),
    CODE(DCO_E_UNKNOWN_ID), CODE(DCO_E_TOO_LARGE), CODE(DCO_E_APP_FAIL),
    CODE(DCO_E_SYSTEM),    CODE(DCO_E_CANCELLED), CODE(DCO_E_REFUSED),
    CODE(DCO_E_PROTOCOL),  CODE(DCO_E_PANIC),     CODE(DCO_E_QUEUED),
    CODE(DCO_E_RETRY),
};
#define N_CODES (sizeof CODES / sizeof CODES[0])

static void result_names(void)
{
    for (size_t i = 0; i < N_CODES; i++) {
        /* The codes are 0, -1, -2, ... with no gap, and each name is its macro's name. */
        EXPECT(CODES[i].code == -(int32_t)i);
        EXPECT_STR(dco_result_name(CODES[i].code), CODES[i].name);
        const char *s = dco_result_str(CODES[i].code);
        EXPECT(s != NULL && s[0] != '\0');
        for (size_t j = 0; j < i && s != NULL; j++)
            EXPECT(strcmp(s, dco_result_str(CODES[j].code)) != 0); /* all different */
    }
    const int32_t unknown[] = {1, 42, -(int32_t)N_CODES, -100, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        EXPECT_STR(dco_result_name(unknown[i]), "DCO_E_UNKNOWN");
        const char *s = dco_result_str(unknown[i]);
        EXPECT(s != NULL && s[0] != '\0');
        for (size_t j = 0; j < N_CODES && s != NULL; j++)
            EXPECT(strcmp(s, dco_result_str(CODES[j].code)) != 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Arguments checked before any connection (DCO_HUB points at CLOSED_HUB here)               */

static void thread_session_arguments(void)
{
    uint8_t buf[16] = {0};

    /* Nothing failed yet on this thread. */
    EXPECT(dco_last_error() != NULL);
    EXPECT_STR(dco_last_error(), "");
    EXPECT(dco_last_request_id() == 0);

    /* dco_write / dco_line */
    EXPECT_RC(dco_write(NUL, 5), DCO_E_INVALID);
    EXPECT_RC(dco_write(NUL, SIZE_MAX), DCO_E_INVALID);
    EXPECT_RC(dco_write(buf, SIZE_MAX), DCO_E_TOO_LARGE);
    EXPECT_RC(dco_write(NUL, 0), DCO_OK); /* len 0 does nothing, NULL is fine */
    EXPECT_RC(dco_write(buf, 0), DCO_OK);
    EXPECT_RC(dco_line(NUL), DCO_E_INVALID);

    /* dco_send_request: unknown flags, negative proxy ids */
    EXPECT_RC(dco_send_request(1, 4), DCO_E_INVALID);
    EXPECT_RC(dco_send_request(1, -1), DCO_E_INVALID);
    EXPECT_RC(dco_send_request(1, 0x100), DCO_E_INVALID);
    EXPECT_RC(dco_send_request(1, INT32_MIN), DCO_E_INVALID);
    EXPECT_RC(dco_send_request(-1, 0), DCO_E_INVALID);
    EXPECT_RC(dco_send_request(INT32_MIN, DCO_BUFFERED), DCO_E_INVALID);
    EXPECT_RC(dco_send_request(-5, DCO_ONEWAY), DCO_E_INVALID);

    /* dco_send_request_to / dco_call_service: NULL, empty, spaced or overlong names; flags */
    {
        char longname[300];
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        EXPECT_RC(dco_send_request_to(NULL, 0), DCO_E_INVALID);
        EXPECT_RC(dco_send_request_to("", 0), DCO_E_INVALID);
        EXPECT_RC(dco_send_request_to("two words", 0), DCO_E_INVALID);
        EXPECT_RC(dco_send_request_to("tab\tname", DCO_BUFFERED), DCO_E_INVALID);
        EXPECT_RC(dco_send_request_to(longname, 0), DCO_E_INVALID);
        EXPECT_RC(dco_send_request_to("ok.svc", 4), DCO_E_INVALID);
        EXPECT_RC(dco_send_request_to("\xff\xfe", 0), DCO_E_INVALID);
        EXPECT_RC(dco_call_service(NULL, 0, 0, buf, sizeof buf), DCO_E_INVALID);
        EXPECT_RC(dco_call_service("", 0, 0, buf, sizeof buf), DCO_E_INVALID);
        EXPECT_RC(dco_call_service("ok.svc", 0x100, 0, buf, sizeof buf), DCO_E_INVALID);
        EXPECT_RC(dco_call_service("ok.svc", 0, 0, NUL, 5), DCO_E_INVALID);
    }
    EXPECT(dco_last_request_id() == 0); /* none of these made a request */

    /* dco_read_request: ids never issued, 0, negative; bad buffers */
    EXPECT_RC(dco_read_request(0, 0, buf, sizeof buf), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_read_request(-1, 0, buf, sizeof buf), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_read_request(INT64_MIN, -1, buf, sizeof buf), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_read_request(12345, 0, buf, sizeof buf), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_read_request(12345, -1, NULL, 0), DCO_E_UNKNOWN_ID); /* no wait: unknown */
    EXPECT_RC(dco_read_request(1, 0, NUL, 5), DCO_E_INVALID);
    EXPECT_RC(dco_read_request(1, 0, buf, SIZE_MAX), DCO_E_INVALID); /* no buffer is that big */

    /* dco_cancel of ids that are not outstanding */
    EXPECT_RC(dco_cancel(0), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_cancel(-7), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_cancel(12345), DCO_E_UNKNOWN_ID);

    /* Nothing buffered: flushing does nothing and succeeds without a hub. */
    EXPECT_RC(dco_flush(), DCO_OK);
}

static void null_handles(void)
{
    uint8_t buf[8] = {0};
    EXPECT_RC(dco_session_write(NUL, buf, 1), DCO_E_INVALID);
    EXPECT_RC(dco_session_write(NUL, NUL, 0), DCO_E_INVALID);
    EXPECT_RC(dco_session_line(NUL, "x"), DCO_E_INVALID);
    EXPECT_RC(dco_session_send_request(NUL, 1, 0), DCO_E_INVALID);
    EXPECT_RC(dco_session_flush(NUL), DCO_E_INVALID);
    EXPECT_RC(dco_session_read_request(NUL, 1, 0, buf, sizeof buf), DCO_E_INVALID);
    EXPECT_RC(dco_session_call_sync(NUL, 1, 0, buf, sizeof buf), DCO_E_INVALID);
    EXPECT_RC(dco_session_cancel(NUL, 1), DCO_E_INVALID);
    EXPECT(dco_session_last_request_id(NUL) == 0);

    EXPECT_RC(dco_worker_set_capacity(NUL, 1), DCO_E_INVALID);
    EXPECT_RC(dco_worker_set_concurrency(NUL, 4), DCO_E_INVALID);
    EXPECT_RC(dco_worker_set_hooks(NUL, NULL, NULL, NULL), DCO_E_INVALID);
    EXPECT_RC(dco_reply_set_rcode(NUL, 200), DCO_E_INVALID);
    EXPECT_RC(dco_worker_stop(NUL), DCO_E_INVALID);
    EXPECT_RC(dco_reply_write(NUL, buf, 1), DCO_E_INVALID);
    EXPECT_RC(dco_reply_write(NUL, NUL, 0), DCO_E_INVALID);

    /* _free(NULL) does nothing (and must not crash: the checks below still run). */
    dco_session_free(NUL);
    dco_worker_free(NUL);
    EXPECT_RC(dco_flush(), DCO_OK);
}

static int32_t never_called(void *user, const dco_delivery *d, dco_reply *reply)
{
    (void)user, (void)d, (void)reply;
    abort();
}

static void constructors(void)
{
    /* dco_session_new: malformed hub lists give NULL and DCO_E_INVALID. */
    const char *bad_lists[] = {"",          ",, ,",          "nonsense",      "127.0.0.1",
                               "127.0.0.1:", "127.0.0.1:99999", ":7790",        "unix:",
                               "127.0.0.1:7790,garbage", "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof bad_lists / sizeof bad_lists[0]; i++) {
        dco_session *s = dco_session_new(bad_lists[i]);
        EXPECT(s == NULL);
        dco_session_free(s);
        check_last_error(__LINE__, bad_lists[i], DCO_E_INVALID);
    }
    /* A well-formed list makes a session (connected on first use) and clears the error. */
    dco_session *ok = dco_session_new("127.0.0.1:1,unix:/nonexistent/dco.sock");
    EXPECT(ok != NULL);
    check_last_error(__LINE__, "dco_session_new(good list)", 0);
    EXPECT(dco_session_last_request_id(ok) == 0);
    dco_session_free(ok);

    /* dco_worker_new: NULL or 0 proxies, too many, negative ids, malformed hubs. */
    int32_t good[2] = {1, 2}, negative[2] = {1, -2};
    int32_t *many = calloc(4097, sizeof *many);
    EXPECT(many != NULL);
    dco_worker *w;
    w = dco_worker_new(g_live, NUL, 1);
    EXPECT(w == NULL);
    check_last_error(__LINE__, "dco_worker_new(NULL proxies, 1)", DCO_E_INVALID);
    w = dco_worker_new(g_live, NUL, 0);
    EXPECT(w == NULL);
    check_last_error(__LINE__, "dco_worker_new(NULL proxies, 0)", DCO_E_INVALID);
    w = dco_worker_new(g_live, good, 0);
    EXPECT(w == NULL);
    check_last_error(__LINE__, "dco_worker_new(proxies, 0)", DCO_E_INVALID);
    w = dco_worker_new(g_live, many, 4097);
    EXPECT(w == NULL);
    check_last_error(__LINE__, "dco_worker_new(4097 proxies)", DCO_E_INVALID);
    w = dco_worker_new(g_live, negative, 2);
    EXPECT(w == NULL);
    check_last_error(__LINE__, "dco_worker_new(negative id)", DCO_E_INVALID);
    w = dco_worker_new("nonsense", good, 2);
    EXPECT(w == NULL);
    check_last_error(__LINE__, "dco_worker_new(bad hubs)", DCO_E_INVALID);
    w = dco_worker_new("", good, 2);
    EXPECT(w == NULL);
    check_last_error(__LINE__, "dco_worker_new(empty hubs)", DCO_E_INVALID);

    /* 4096 proxies is the most, and allowed. */
    w = dco_worker_new(g_live, many, 4096);
    EXPECT(w != NULL);
    check_last_error(__LINE__, "dco_worker_new(4096 proxies)", 0);
    dco_worker_free(w);
    free(many);

    /* A good worker: NULL handler refused by run; capacity 0 is taken as 1. */
    w = dco_worker_new(g_closed, good, 2);
    EXPECT(w != NULL);
    check_last_error(__LINE__, "dco_worker_new(good)", 0);
    EXPECT_RC(dco_worker_run(w, NULL, NULL), DCO_E_INVALID);
    EXPECT_RC(dco_worker_set_capacity(w, 0), DCO_OK);
    EXPECT_RC(dco_worker_run(NUL, never_called, NULL), DCO_E_INVALID);
    EXPECT_RC(dco_worker_set_capacity(w, 8), DCO_OK);
    /* Concurrency is 1 to 4096. */
    EXPECT_RC(dco_worker_set_concurrency(w, 0), DCO_E_INVALID);
    EXPECT_RC(dco_worker_set_concurrency(w, 4097), DCO_E_INVALID);
    EXPECT_RC(dco_worker_set_concurrency(w, 1), DCO_OK);
    EXPECT_RC(dco_worker_set_hooks(w, NULL, NULL, NULL), DCO_OK);
    /* dco_worker_stop only sets a flag (it is async-signal-safe): it succeeds and leaves the
     * thread's last error as it was. */
    EXPECT_RC(dco_worker_stop(NUL), DCO_E_INVALID);
    EXPECT(dco_worker_stop(w) == DCO_OK);
    EXPECT(strncmp(dco_last_error(), "DCO_E_INVALID:", 14) == 0);
    /* Stopped before it runs: run returns DCO_OK at once, without calling the handler (the
     * hub list points at a closed port, so it could not have served anything anyway). */
    EXPECT_RC(dco_worker_run(w, never_called, NULL), DCO_OK);
    dco_worker_free(w);
}

/* ---------------------------------------------------------------------------------------- */
/* No hub: DCO_HUB at a closed port                                                          */

static void no_hub(void)
{
    uint8_t buf[64];

    /* dco_connect and dco_send_request fail at once with DCO_E_NOT_CONNECTED; dco_call_sync
     * keeps trying until its timeout (it rides through a hub restart), then says the same.
     * A flush tries for DCO_FLUSH_TIMEOUT_MS. */
    EXPECT_RC(dco_close(), DCO_OK);
    setenv("DCO_FLUSH_TIMEOUT_MS", "300", 1);
    double t0 = now_s();
    EXPECT_RC(dco_connect(), DCO_E_NOT_CONNECTED);
    EXPECT_RC(dco_line("nobody listens"), DCO_OK);
    EXPECT_RC(dco_call_sync(1, 300, buf, sizeof buf), DCO_E_NOT_CONNECTED);
    double t1 = now_s();
    EXPECT(t1 - t0 >= 0.3); /* it never returns early: the hub might have come back */
    EXPECT_RC(dco_send_request(1, 0), DCO_E_NOT_CONNECTED);
    EXPECT(now_s() - t0 < 10.0); /* a generous hang guard, not a performance check */
    fprintf(stderr, "bad_input: failing to connect took %.3f s\n", t1 - t0);

    /* A buffered request needs no hub until flushed. */
    int64_t id;
    EXPECT_POS(id, dco_send_request(1, DCO_BUFFERED));
    EXPECT(dco_last_request_id() == id);
    EXPECT_RC(dco_flush(), DCO_E_NOT_CONNECTED);
    /* Reading it cannot succeed: whichever of the two documented failures it reports (the
     * header says DCO_E_SYSTEM once a flush failed; NOT_CONNECTED while no hub answers), it is
     * a failure, and the call returns at once. */
    int64_t r = dco_read_request(id, 300, buf, sizeof buf);
    checks++;
    if (r != DCO_E_SYSTEM && r != DCO_E_NOT_CONNECTED)
        failed(__LINE__, "dco_read_request(buffered id, no hub)", "returned %" PRId64 " (%s)", r,
               dco_result_name((int32_t)r));
    check_last_error(__LINE__, "dco_read_request(buffered id, no hub)", r);
    fprintf(stderr, "bad_input: a buffered request whose flush failed reads as %s\n",
            dco_result_name((int32_t)r));

    /* Explicit sessions on a closed TCP port and on a missing Unix socket. */
    const char *dead[] = {g_closed, "unix:/nonexistent/dco-test.sock"};
    for (int i = 0; i < 2; i++) {
        dco_session *s = dco_session_new(dead[i]);
        EXPECT(s != NULL);
        EXPECT_RC(dco_session_line(s, "x"), DCO_OK);
        EXPECT_RC(dco_session_call_sync(s, 1, 200, buf, sizeof buf), DCO_E_NOT_CONNECTED);
        EXPECT_RC(dco_session_send_request(s, 1, 0), DCO_E_NOT_CONNECTED);
        dco_session_free(s);
    }

    /* dco_close always succeeds, and the next call starts a new session. */
    EXPECT_RC(dco_close(), DCO_OK);
    EXPECT(dco_last_request_id() == 0);
    unsetenv("DCO_FLUSH_TIMEOUT_MS");
}

/* A malformed DCO_HUB: every call on the thread session says DCO_E_INVALID. Single-threaded
 * here, so changing the environment is safe. */
static void bad_env(void)
{
    int32_t p = 1;
    setenv("DCO_HUB", "this is not a hub list", 1);
    EXPECT_RC(dco_close(), DCO_OK);
    EXPECT_RC(dco_connect(), DCO_E_INVALID);
    EXPECT_RC(dco_line("x"), DCO_E_INVALID);
    EXPECT_RC(dco_call_sync(1, 0, NULL, 0), DCO_E_INVALID);
    dco_session *s = dco_session_new(NULL);
    EXPECT(s == NULL);
    check_last_error(__LINE__, "dco_session_new(NULL) with a bad DCO_HUB", DCO_E_INVALID);
    dco_worker *w = dco_worker_new(NULL, &p, 1);
    EXPECT(w == NULL);
    check_last_error(__LINE__, "dco_worker_new(NULL hubs) with a bad DCO_HUB", DCO_E_INVALID);
    setenv("DCO_HUB", g_closed, 1);
    EXPECT_RC(dco_close(), DCO_OK);
}

/* ---------------------------------------------------------------------------------------- */
/* The in-process worker serving BLOCK_PROXY                                                 */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_released;     /* "block" requests may finish */
static int g_blocked;      /* "block" requests the handler has received */
static int g_handler_bad;  /* checks made inside the handler that failed */
static int g_handler_checks;
static dco_worker *g_worker;
static int g_run_rc = 99;

static int32_t block_handler(void *user, const dco_delivery *d, dco_reply *reply)
{
    (void)user;
    int bad = 0;
    /* dco_reply_write's own bad input, on the worker's thread. */
    if (dco_reply_write(reply, NUL, 3) != DCO_E_INVALID)
        bad++;
    if (strncmp(dco_last_error(), "DCO_E_INVALID:", 14) != 0)
        bad++;
    if (dco_reply_write(reply, NUL, 0) != DCO_OK) /* len 0: NULL data is fine */
        bad++;
    if (dco_last_error()[0] != '\0')
        bad++;
    if (dco_reply_write(reply, (const uint8_t *)"x", SIZE_MAX) != DCO_E_TOO_LARGE)
        bad++;
    if (strncmp(dco_last_error(), "DCO_E_TOO_LARGE:", 16) != 0)
        bad++;
    if (d->proxy_id != g_block || d->attempt < 1 || (d->len > 0 && d->body == NULL))
        bad++;
    pthread_mutex_lock(&g_mu);
    g_handler_checks += 7;
    g_handler_bad += bad;
    pthread_mutex_unlock(&g_mu);

    if (d->len >= 5 && memcmp(d->body, "block", 5) == 0) {
        pthread_mutex_lock(&g_mu);
        g_blocked++;
        pthread_cond_broadcast(&g_cv);
        while (!g_released)
            pthread_cond_wait(&g_cv, &g_mu);
        pthread_mutex_unlock(&g_mu);
        dco_reply_write(reply, (const uint8_t *)"released", 8);
        return 0;
    }
    if (d->len >= 4 && memcmp(d->body, "fail", 4) == 0) {
        dco_reply_write(reply, (const uint8_t *)"failing with 5", 14);
        return 5;
    }
    if (d->len >= 4 && memcmp(d->body, "stop", 4) == 0) {
        /* Stopping from inside the handler is allowed: run returns after this request. */
        dco_worker_stop(g_worker);
        dco_reply_write(reply, (const uint8_t *)"stopping", 8);
        return 0;
    }
    dco_reply_write(reply, (const uint8_t *)"pong", 4);
    return 0;
}

static void *worker_thread(void *arg)
{
    (void)arg;
    int rc = dco_worker_run(g_worker, block_handler, NULL);
    pthread_mutex_lock(&g_mu);
    g_run_rc = rc;
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

/* Calls BLOCK_PROXY with "ping" until the hub routes it (up to 10 s). */
static int wait_for_block_worker(void)
{
    uint8_t buf[16];
    for (int i = 0; i < 500; i++) {
        if (dco_line("ping") != DCO_OK)
            return 0;
        int64_t n = dco_call_sync(g_block, 10000, buf, sizeof buf);
        if (n == 4 && memcmp(buf, "pong", 4) == 0)
            return 1;
        if (n != DCO_E_NO_ROUTE)
            return 0;
        sleep_ms(20);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* With a live hub                                                                          */

static void live(void)
{
    uint8_t buf[64];
    int64_t id;

    setenv("DCO_HUB", g_live, 1); /* still single-threaded */
    EXPECT_RC(dco_close(), DCO_OK);
    EXPECT_RC(dco_connect(), DCO_OK);
    EXPECT_RC(dco_connect(), DCO_OK); /* already connected: fine */

    /* On error the body is kept: bad flags, negative proxy, a write over the frame limit
     * (nothing of it is appended) all leave "kept\n" in place for the next send. */
    size_t huge = (size_t)16 * 1024 * 1024;
    uint8_t *big = malloc(huge);
    EXPECT(big != NULL);
    if (big != NULL)
        memset(big, 'x', huge);
    EXPECT_RC(dco_line("kept"), DCO_OK);
    EXPECT_RC(dco_send_request(g_echo, 8), DCO_E_INVALID);
    EXPECT_RC(dco_send_request(-1, 0), DCO_E_INVALID);
    if (big != NULL)
        EXPECT_RC(dco_write(big, huge), DCO_E_TOO_LARGE);
    EXPECT_RC(dco_line(NUL), DCO_E_INVALID);
    free(big);
    EXPECT_RC(dco_call_sync(g_echo, 10000, buf, sizeof buf), 5);
    EXPECT(memcmp(buf, "kept\n", 5) == 0);
    EXPECT(dco_last_rcode() == 0);

    /* An id never issued on a connected session; id 0; negative. */
    EXPECT_RC(dco_read_request(dco_last_request_id() + 1000, 0, buf, sizeof buf),
              DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_read_request(0, 10000, buf, sizeof buf), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_read_request(-3, 10000, buf, sizeof buf), DCO_E_UNKNOWN_ID);

    /* A proxy nobody serves: the send succeeds, the read says DCO_E_NO_ROUTE, and the failure
     * releases the request. */
    EXPECT_RC(dco_line("to nobody"), DCO_OK);
    EXPECT_POS(id, dco_send_request(UNSERVED, 0));
    EXPECT_RC(dco_read_request(id, 10000, buf, sizeof buf), DCO_E_NO_ROUTE);
    EXPECT_RC(dco_read_request(id, 0, buf, sizeof buf), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_call_sync(UNSERVED, 10000, buf, sizeof buf), DCO_E_NO_ROUTE);

    /* One-way: an id, but nothing to read. */
    EXPECT_RC(dco_line("one way"), DCO_OK);
    EXPECT_POS(id, dco_send_request(g_echo, DCO_ONEWAY));
    EXPECT_RC(dco_read_request(id, 0, buf, sizeof buf), DCO_E_UNKNOWN_ID);

    /* Buffers: a bad buffer is refused and the reply stays; (NULL, 0) probes the length;
     * a short buffer gets the start and the full length; the reply read whole is released. */
    EXPECT_RC(dco_line("0123456789"), DCO_OK);
    EXPECT_POS(id, dco_send_request(g_echo, 0));
    EXPECT_RC(dco_read_request(id, 10000, NUL, 4), DCO_E_INVALID);
    EXPECT_RC(dco_read_request(id, 10000, NULL, 0), 11);
    EXPECT_RC(dco_read_request(id, 0, NULL, 0), 11);
    memset(buf, '#', sizeof buf);
    EXPECT_RC(dco_read_request(id, 0, buf, 4), 11);
    EXPECT(memcmp(buf, "0123#", 5) == 0); /* exactly cap bytes copied, no NUL added */
    EXPECT_RC(dco_read_request(id, 0, buf, 11), 11);
    EXPECT(memcmp(buf, "0123456789\n", 11) == 0);
    EXPECT_RC(dco_read_request(id, 0, buf, sizeof buf), DCO_E_UNKNOWN_ID);

    /* Cancel: the reply is dropped; reading the id says it was cancelled, once. */
    EXPECT_RC(dco_line("cancel me"), DCO_OK);
    EXPECT_POS(id, dco_send_request(g_echo, 0));
    EXPECT_RC(dco_cancel(id), DCO_OK);
    EXPECT_RC(dco_cancel(id), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_read_request(id, 0, buf, sizeof buf), DCO_E_CANCELLED);
    EXPECT_RC(dco_read_request(id, 0, buf, sizeof buf), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_cancel(id), DCO_E_UNKNOWN_ID);

    /* Buffered, then flushed, then read. */
    EXPECT_RC(dco_line("buffered"), DCO_OK);
    EXPECT_POS(id, dco_send_request(g_echo, DCO_BUFFERED));
    EXPECT_RC(dco_flush(), DCO_OK);
    EXPECT_RC(dco_flush(), DCO_OK);
    EXPECT_RC(dco_read_request(id, 10000, buf, sizeof buf), 9);

    /* Now the in-process worker, to have requests whose reply is certainly not there yet. */
    g_worker = dco_worker_new(g_live, &g_block, 1);
    EXPECT(g_worker != NULL);
    if (g_worker == NULL)
        return;
    pthread_t tid;
    EXPECT(pthread_create(&tid, NULL, worker_thread, NULL) == 0);
    int up = wait_for_block_worker();
    EXPECT(up);
    if (up) {
        /* Timeout 0 only looks: DCO_E_TIMEOUT at once, and the request stays outstanding. */
        EXPECT_RC(dco_line("block 1"), DCO_OK);
        EXPECT_POS(id, dco_send_request(g_block, 0));
        EXPECT_RC(dco_read_request(id, 0, buf, sizeof buf), DCO_E_TIMEOUT);
        EXPECT_RC(dco_read_request(id, 0, NULL, 0), DCO_E_TIMEOUT);
        /* A short wait times out the same way. */
        EXPECT_RC(dco_read_request(id, 50, buf, sizeof buf), DCO_E_TIMEOUT);

        /* dco_call_sync that times out abandons its request. */
        EXPECT_RC(dco_line("block 2"), DCO_OK);
        EXPECT_RC(dco_call_sync(g_block, 0, buf, sizeof buf), DCO_E_TIMEOUT);
        int64_t abandoned = dco_last_request_id();
        EXPECT(abandoned == id + 1);
        EXPECT_RC(dco_read_request(abandoned, 0, buf, sizeof buf), DCO_E_UNKNOWN_ID);

        /* Let the handler go: the first request's reply arrives and is read whole. */
        pthread_mutex_lock(&g_mu);
        g_released = 1;
        pthread_cond_broadcast(&g_cv);
        pthread_mutex_unlock(&g_mu);
        EXPECT_RC(dco_read_request(id, 10000, buf, sizeof buf), 8);
        EXPECT(memcmp(buf, "released", 8) == 0);
        EXPECT(dco_last_rcode() == 0);

        /* An application failure: DCO_E_APP_FAIL, the return code, the worker's words. */
        EXPECT_RC(dco_line("fail"), DCO_OK);
        EXPECT_RC(dco_call_sync(g_block, 10000, buf, sizeof buf), DCO_E_APP_FAIL);
        EXPECT(dco_last_rcode() == 5);
        EXPECT(strstr(dco_last_error(), "failing with 5") != NULL);
        /* The next success resets both. */
        EXPECT_RC(dco_line("ping"), DCO_OK);
        EXPECT_RC(dco_call_sync(g_block, 10000, buf, sizeof buf), 4);
        EXPECT(dco_last_rcode() == 0);
    }
    /* Stop the worker from inside its handler, then join it. */
    pthread_mutex_lock(&g_mu);
    g_released = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    if (up) {
        EXPECT_RC(dco_line("stop"), DCO_OK);
        EXPECT_RC(dco_call_sync(g_block, 10000, buf, sizeof buf), 8);
        EXPECT(memcmp(buf, "stopping", 8) == 0);
    } else {
        dco_worker_stop(g_worker);
    }
    pthread_join(tid, NULL);
    EXPECT(g_run_rc == DCO_OK);
    EXPECT(g_handler_checks > 0);
    EXPECT(g_handler_bad == 0);
    dco_worker_free(g_worker);
    g_worker = NULL;

    EXPECT_RC(dco_close(), DCO_OK);
    EXPECT(dco_last_request_id() == 0);
}

/* Over quota (the hub allows 2 unread requests): DCO_E_BUSY, the body kept, and room again
 * once a reply is read. Explicit session calls. */
static void quota(void)
{
    uint8_t buf[64];
    int64_t a, b;
    dco_session *s = dco_session_new(g_quota);
    EXPECT(s != NULL);
    if (s == NULL)
        return;
    EXPECT_POS(a, dco_session_send_request(s, UNSERVED, 0));
    EXPECT_POS(b, dco_session_send_request(s, UNSERVED, 0));
    EXPECT(b == a + 1);
    EXPECT_RC(dco_session_write(s, (const uint8_t *)"abc", 3), DCO_OK);
    EXPECT_RC(dco_session_send_request(s, UNSERVED, 0), DCO_E_BUSY);
    EXPECT_RC(dco_session_send_request(s, UNSERVED, DCO_BUFFERED), DCO_E_BUSY);
    EXPECT(dco_session_last_request_id(s) == b);
    EXPECT_RC(dco_session_read_request(s, a, 10000, buf, sizeof buf), DCO_E_NO_ROUTE);
    check_last_error(__LINE__, "NO_ROUTE text", DCO_E_NO_ROUTE);
    int64_t c;
    EXPECT_POS(c, dco_session_send_request(s, UNSERVED, 0));
    EXPECT(c == b + 1);
    EXPECT_RC(dco_session_cancel(s, b), DCO_OK);
    EXPECT_RC(dco_session_cancel(s, b), DCO_E_UNKNOWN_ID);
    EXPECT_RC(dco_session_read_request(s, c, 10000, buf, sizeof buf), DCO_E_NO_ROUTE);
    EXPECT_RC(dco_session_flush(s), DCO_OK);
    dco_session_free(s);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bad_input LIVE_HUB CLOSED_HUB QUOTA_HUB ECHO_PROXY BLOCK_PROXY\n");
        return 2;
    }
    g_live = argv[1];
    g_closed = argv[2];
    g_quota = argv[3];
    g_echo = (int32_t)atoi(argv[4]);
    g_block = (int32_t)atoi(argv[5]);
    alarm(50); /* hang guard: SIGALRM ends the program if anything blocks for good */

    setenv("DCO_HUB", g_closed, 1); /* before any dco call or thread */

    result_names();
    thread_session_arguments();
    null_handles();
    constructors();
    no_hub();
    bad_env();
    live();
    quota();

    printf("bad_input: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
