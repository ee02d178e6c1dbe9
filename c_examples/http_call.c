/*
 * http_call.c: calls a REST API through the HTTP worker.
 *
 *   usage: http_call [-t TIMEOUT_MS] PROXY METHOD PATH [BODY]
 *
 * PROXY is served by `dco worker http --proxy PROXY --base-url URL`; PATH is relative to URL.
 * The request body is an HTTP/1.1 request message (request line, headers, empty line, body;
 * lines may end in LF), the reply the response message, and dco_last_rcode() the HTTP status.
 * The core is five calls:
 *
 *     dco_line("GET /items/7 HTTP/1.1");
 *     dco_line("Accept: application/json");
 *     dco_line("");
 *     int64_t n = dco_call(30, 0, 10000, buf, sizeof buf);   // > 0: the response message
 *     int status = dco_last_rcode();                         // 200
 *
 * Prints the status on standard error and the response body on standard output. Exit status:
 * 0 for 2xx/3xx; 4 for a 4xx (DCO_E_APP_FAIL: not retried; the response message is in
 * dco_last_error()); 1 for any other failure, such as DCO_E_SYSTEM after the hub's retries of
 * a 5xx, an unreachable service or a timeout ran out; 2 for a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dco.h"

/* The body of an HTTP response message: what follows the first empty line. */
static const uint8_t *body_of(const uint8_t *msg, size_t len, size_t *body_len)
{
    for (size_t i = 0; i + 3 < len; i++) {
        if (memcmp(msg + i, "\r\n\r\n", 4) == 0) {
            *body_len = len - i - 4;
            return msg + i + 4;
        }
    }
    *body_len = 0;
    return msg + len;
}

int main(int argc, char **argv)
{
    int32_t timeout_ms = 10000;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-t") == 0) {
        timeout_ms = atoi(argv[2]);
        i = 3;
    }
    if (argc - i < 3) {
        fprintf(stderr, "usage: http_call [-t TIMEOUT_MS] PROXY METHOD PATH [BODY]\n");
        return 2;
    }
    int32_t proxy = atoi(argv[i]);
    const char *method = argv[i + 1], *path = argv[i + 2];
    const char *body = argc - i > 3 ? argv[i + 3] : NULL;

    /* The request message. Headers the worker sets itself (Host, Content-Length) are left out;
     * credentials come from the worker's configuration, never from here. */
    char line[2048];
    snprintf(line, sizeof line, "%s %s HTTP/1.1", method, path);
    dco_line(line);
    dco_line("Accept: application/json");
    if (body != NULL)
        dco_line("Content-Type: application/json");
    dco_line("");
    if (body != NULL)
        dco_write((const uint8_t *)body, strlen(body));

    static uint8_t reply[1 << 20];
    int64_t n = dco_call(proxy, 0, timeout_ms, reply, sizeof reply);
    if (n == DCO_E_APP_FAIL) {
        /* A 4xx: the status is the return code, the response message is the error text. */
        fprintf(stderr, "http_call: HTTP %d\n%s\n", (int)dco_last_rcode(), dco_last_error());
        return 4;
    }
    if (n < 0) {
        fprintf(stderr, "http_call: %s\n", dco_last_error());
        return 1;
    }
    if ((uint64_t)n > sizeof reply) {
        fprintf(stderr, "http_call: the %lld byte response is larger than this example's buffer\n",
                (long long)n);
        return 1;
    }
    size_t blen;
    const uint8_t *b = body_of(reply, (size_t)n, &blen);
    fprintf(stderr, "http_call: HTTP %d\n", (int)dco_last_rcode());
    fwrite(b, 1, blen, stdout);
    return 0;
}
