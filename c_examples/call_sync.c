/*
 * call_sync.c: one synchronous call from C.
 *
 *   usage: call_sync [-t TIMEOUT_MS] [-q] PROXY|SERVICE TEXT [TEXT...]
 *
 * Builds a request body on this thread's session, one line per TEXT (dco_line appends the
 * text and a newline); a TEXT of "-" appends standard input as it is, byte for byte
 * (dco_write). Then dco_call sends the body to PROXY (a number) and waits up to TIMEOUT_MS for
 * the reply, which is written to standard output unchanged. Given a SERVICE name instead,
 * dco_call_service sends it to the proxy the hub routes that service to.
 *
 * With -q (DCO_QUEUE_ON_TIMEOUT), a reply that takes longer than TIMEOUT_MS does not fail the
 * call: dco_call returns DCO_E_QUEUED, the request goes on, and the program picks its parked
 * answer up with dco_read_request(dco_last_request_id(), ...), as a program would after doing
 * something else meanwhile.
 *
 * The hub is taken from DCO_HUB (a comma-separated failover list of host:port or unix:/path;
 * default 127.0.0.1:7790).
 *
 * Exit status: 0 on success, 1 when dco reports a failure (its name, the worker's return code
 * for DCO_E_APP_FAIL, and dco_last_error() go to standard error), 2 for a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dco.h"

/* Prints a dco failure the same way for every call, and returns exit status 1. */
static int fail(const char *what, int64_t rc)
{
    fprintf(stderr, "call_sync: %s returned %lld (%s)", what, (long long)rc,
            dco_result_name((int32_t)rc));
    if (rc == DCO_E_APP_FAIL)
        fprintf(stderr, ", worker return code %d", (int)dco_last_rcode());
    /* dco_last_error() is never NULL: this thread's last failure, in words. */
    fprintf(stderr, "\ncall_sync: %s\n", dco_last_error());
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: call_sync [-t TIMEOUT_MS] [-q] PROXY|SERVICE TEXT [TEXT...]\n");
    return 2;
}

/* Parses a decimal int32 strictly; returns 0 on success. */
static int parse_i32(const char *s, int32_t *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < INT32_MIN || v > INT32_MAX)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/* Appends standard input to the body with dco_write, a chunk at a time. */
static int append_stdin(void)
{
    uint8_t chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        int rc = dco_write(chunk, n); /* the library copies the bytes */
        if (rc != DCO_OK)
            return fail("dco_write", rc);
    }
    if (ferror(stdin)) {
        fprintf(stderr, "call_sync: cannot read standard input\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int32_t timeout_ms = 10000;
    int32_t flags = 0;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-t") == 0) {
        if (parse_i32(argv[i + 1], &timeout_ms) != 0)
            return usage();
        i += 2;
    }
    if (i < argc && strcmp(argv[i], "-q") == 0) {
        flags = DCO_QUEUE_ON_TIMEOUT;
        i += 1;
    }
    if (argc - i < 2)
        return usage();
    /* A number is a proxy id; anything else names a service. */
    int32_t proxy = -1;
    const char *service = NULL;
    if (parse_i32(argv[i], &proxy) != 0)
        service = argv[i];

    /* 1. Build the body. Nothing is sent yet; the session connects on first send. */
    for (i = i + 1; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0) {
            int st = append_stdin();
            if (st != 0)
                return st;
        } else {
            int rc = dco_line(argv[i]);
            if (rc != DCO_OK)
                return fail("dco_line", rc);
        }
    }

    /* 2. Send it and wait for the reply. The result is the reply's full length, snprintf-style:
     *    when it is larger than the buffer, only the buffer's worth was copied and the reply
     *    stays in the session under dco_last_request_id(), to be read whole. */
    uint8_t small[4096];
    int64_t n = service != NULL
                    ? dco_call_service(service, flags, timeout_ms, small, sizeof small)
                    : dco_call(proxy, flags, timeout_ms, small, sizeof small);
    if (n == DCO_E_QUEUED) {
        /* Past the timeout the request went on; its answer is parked in the session, across
         * reconnects and hub restarts. Here the program just waits for it. */
        int64_t id = dco_last_request_id();
        fprintf(stderr, "call_sync: request %lld queued; reading its answer later\n",
                (long long)id);
        n = dco_read_request(id, 60000, small, sizeof small);
        if (n < 0)
            return fail("dco_read_request", n);
    } else if (n < 0) {
        return fail(service != NULL ? "dco_call_service" : "dco_call", n);
    }

    uint8_t *reply = small;
    uint8_t *big = NULL;
    if ((uint64_t)n > sizeof small) {
        big = malloc((size_t)n);
        if (big == NULL) {
            fprintf(stderr, "call_sync: out of memory for a %lld byte reply\n", (long long)n);
            return 1;
        }
        /* The reply is already in the session: timeout 0 only looks, it does not wait. */
        int64_t m = dco_read_request(dco_last_request_id(), 0, big, (size_t)n);
        if (m != n) {
            free(big);
            return fail("dco_read_request", m < 0 ? m : DCO_E_SYSTEM);
        }
        reply = big;
    }

    /* 3. Print the reply as it is (it is bytes, not a C string). */
    int st = 0;
    if (fwrite(reply, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
        fprintf(stderr, "call_sync: cannot write the reply\n");
        st = 1;
    }
    free(big);
    return st;
}
