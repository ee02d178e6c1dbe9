/*
 * batch.c: many requests in one write, replies read back in any order.
 *
 *   usage: batch PROXY        (PROXY must be served by an echo worker: `dco worker echo`)
 *
 * 1. Sends 300 requests with DCO_BUFFERED: they wait in the session, and one dco_flush writes
 *    them all to the hub at once and returns when the hub has accepted them.
 * 2. Reads the replies back in REVERSE order with dco_read_request: a session parks replies by
 *    request id, so the order of reading does not matter. Each reply must be its own body.
 * 3. Reads a reply bigger than the buffer, snprintf-style: a first read with a small buffer
 *    returns the reply's full length and keeps the reply; a length probe (NULL, 0) says the
 *    same; a second read with a big enough buffer gets it whole and releases it.
 *
 * The hub comes from DCO_HUB. Prints one line per step; exits 0 when every check passed,
 * 1 on the first failed check, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dco.h"

#define N_REQUESTS 300
#define BIG_LEN 200000 /* well over the small buffer, well under the hub's frame limit */

static int check_failed(int line, const char *what, int64_t got)
{
    fprintf(stderr, "batch.c:%d: %s (got %lld = %s; last error: %s)\n", line, what,
            (long long)got, got < 0 ? dco_result_name((int32_t)got) : "-", dco_last_error());
    return 1;
}
#define CHECK(cond, what, got)                                                                 \
    do {                                                                                       \
        if (!(cond))                                                                           \
            return check_failed(__LINE__, (what), (int64_t)(got));                             \
    } while (0)

/* The body of request i: a line with its number, so every reply can be told apart. */
static int body_of(int i, char *out, size_t cap)
{
    return snprintf(out, cap, "request %d of %d", i, N_REQUESTS);
}

static int batch_reverse(int32_t proxy)
{
    int64_t ids[N_REQUESTS];
    char text[64];

    for (int i = 0; i < N_REQUESTS; i++) {
        body_of(i, text, sizeof text);
        CHECK(dco_line(text) == DCO_OK, "dco_line", -1);
        /* DCO_BUFFERED: nothing goes out yet; the id is known at once. */
        ids[i] = dco_send_request(proxy, DCO_BUFFERED);
        CHECK(ids[i] > 0, "dco_send_request(DCO_BUFFERED)", ids[i]);
        CHECK(i == 0 || ids[i] > ids[i - 1], "request ids increase", ids[i]);
    }
    CHECK(dco_last_request_id() == ids[N_REQUESTS - 1], "dco_last_request_id", dco_last_request_id());

    /* One write for all 300; returns once the hub has accepted them. */
    int rc = dco_flush();
    CHECK(rc == DCO_OK, "dco_flush", rc);

    for (int i = N_REQUESTS - 1; i >= 0; i--) {
        char want[64], got[64];
        int want_len = body_of(i, want, sizeof want - 1);
        want[want_len++] = '\n'; /* dco_line added a newline; the echo worker returns it */
        int64_t n = dco_read_request(ids[i], 10000, (uint8_t *)got, sizeof got);
        CHECK(n == want_len, "reply length", n);
        CHECK(memcmp(got, want, (size_t)want_len) == 0, "reply body is the request's body", i);
        CHECK(dco_last_rcode() == 0, "dco_last_rcode after success", dco_last_rcode());
        CHECK(dco_last_error()[0] == '\0', "dco_last_error empty after success", n);
    }
    /* Every reply was read whole, so it was released: reading one again is an error. */
    int64_t again = dco_read_request(ids[0], 0, NULL, 0);
    CHECK(again == DCO_E_UNKNOWN_ID, "a reply read whole is released", again);

    printf("batch: %d buffered requests, one flush, replies read in reverse order: ok\n",
           N_REQUESTS);
    return 0;
}

static int big_reply(int32_t proxy)
{
    uint8_t *body = malloc(BIG_LEN);
    uint8_t *buf = malloc(BIG_LEN);
    CHECK(body != NULL && buf != NULL, "malloc", 0);
    for (size_t i = 0; i < BIG_LEN; i++)
        body[i] = (uint8_t)(i * 7 + i / 251); /* not periodic in the small buffer's size */

    CHECK(dco_write(body, BIG_LEN) == DCO_OK, "dco_write of the big body", -1);

    /* First read, small buffer: returns the FULL length, copies only what fits. */
    uint8_t small[100];
    int64_t n = dco_call_sync(proxy, 10000, small, sizeof small);
    CHECK(n == BIG_LEN, "dco_call_sync returns the full length", n);
    CHECK(memcmp(small, body, sizeof small) == 0, "the small buffer holds the reply's start", 0);

    /* The reply stayed in the session under the id of the call. A length probe keeps it too. */
    int64_t id = dco_last_request_id();
    CHECK(id > 0, "dco_last_request_id", id);
    int64_t probe = dco_read_request(id, 0, NULL, 0);
    CHECK(probe == BIG_LEN, "length probe with (NULL, 0)", probe);

    /* Second read, big enough buffer: the whole reply, which is then released. */
    int64_t m = dco_read_request(id, 0, buf, BIG_LEN);
    CHECK(m == BIG_LEN, "second read returns the whole reply", m);
    CHECK(memcmp(buf, body, BIG_LEN) == 0, "the whole reply is the body", 0);
    int64_t gone = dco_read_request(id, 0, buf, BIG_LEN);
    CHECK(gone == DCO_E_UNKNOWN_ID, "the reply read whole is released", gone);

    free(body);
    free(buf);
    printf("batch: %d byte reply read with a %zu byte buffer, then whole: ok\n", BIG_LEN,
           sizeof small);
    return 0;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long proxy = argc == 2 ? strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || end == argv[1] || *end != '\0' || proxy < 0 || proxy > INT32_MAX) {
        fprintf(stderr, "usage: batch PROXY\n");
        return 2;
    }
    if (batch_reverse((int32_t)proxy) != 0)
        return 1;
    if (big_reply((int32_t)proxy) != 0)
        return 1;
    dco_close(); /* optional: the session would also be closed at thread exit */
    return 0;
}
