/*
 * extproc_emulator.c: behaves toward libdco.so the way Oracle's extproc agent does, so the
 * extproc face (src/extproc) can be proved without an Oracle server.
 *
 *   usage: extproc_emulator LIBDCO SCENARIO [PROXY...]
 *
 * What it does as extproc does:
 * - It provides OCIExtProcRaiseExcpWithMsg and OCIExtProcAllocCallMemory under the names
 *   Oracle's client library exports them, `ociepmsg` and `ociepacm`, exported from this
 *   executable (built with -rdynamic), so libdco's dlsym(RTLD_DEFAULT, ...) finds them. An
 *   exception raised during a call is held and "raised in PL/SQL" once the call returns; call
 *   memory is freed (after being overwritten) once the call returns.
 * - It dlopen()s LIBDCO and dlsym()s every dco_ext_* entry point into a function pointer whose
 *   type spells out the PL/SQL call spec's PARAMETERS list by Oracle's type mapping (below), not
 *   the types of dco.h. dco.h is included only to check at compile time that its prototypes
 *   are those types (_Static_assert), so a drift between header and call spec fails the build.
 * - Arguments are passed as extproc passes them: a context made for each call and destroyed
 *   after it; IN RAW as a copy in a buffer of exactly LENGTH bytes (ASan sees any over-read);
 *   a NULL IN value with a garbage pointer and length (Oracle leaves them undefined) and
 *   INDICATOR -1; OUT RAW as a buffer of MAXLEN bytes followed by guard bytes, LENGTH and
 *   INDICATOR preset to garbage, MAXLEN by reference (32767, a PL/SQL RAW(32767) variable).
 * - Each database session is a process: each run of this program is one session (the scenario
 *   "sessions" forks two that run at the same time).
 *
 * Built twice by tests/extproc.rs: with -DEMULATOR_WITH_OCI=1 -rdynamic (Oracle present), and
 * with -DEMULATOR_WITH_OCI=0 (no ociep* symbols anywhere in the process: Oracle absent). The
 * scenarios are the same; where Oracle is absent every expected exception becomes the expected
 * negative DCO_E_* return value and dco_ext_last_error returns NULL.
 *
 * Scenarios (DCO_HUB in the environment names the hub, as extproc.ora would set it):
 *   probe                             loads the library, one good and one bad call (for the
 *                                     sanitizer probe)
 *   calls ECHO UNSERVED               the caller's API against an echo worker
 *   app APP                           application failures (worker fails "fail N" with code N)
 *   gate GATE CTRL ECHO               timeouts: GATE holds "hold KEY ..." until CTRL gets
 *                                     "open KEY"
 *   close ECHO                        dco_ext_close and the session after it
 *   queue ECHO SLOW UNSERVED          dco_ext_call: flags 0 and queue-on-timeout, against an
 *                                     echo worker and one that holds each request (SLOW)
 *   sessions ECHO                     two sessions (forked processes) at once
 *   not_connected ECHO                DCO_HUB is a closed port (calls keep trying until their
 *                                     timeout, as through a hub restart)
 *   limits UNSERVED                   a hub started with --quota 2 --max-frame 4096
 *   bad_hub ECHO                      DCO_HUB is malformed
 *
 * Every check counts; a failed one prints its line and the program exits 1 after the rest.
 * Last line of standard output: "extproc_emulator SCENARIO (MODE): N checks, M failed".
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dco.h"

#ifndef EMULATOR_WITH_OCI
#error "build with -DEMULATOR_WITH_OCI=1 (Oracle present) or -DEMULATOR_WITH_OCI=0 (absent)"
#endif

/* ---------------------------------------------------------------------------------------- */
/* The call specs, by Oracle's mapping of PL/SQL external types to C:                        */
/*   CONTEXT -> OCIExtProcContext *; INT -> int (int * for OUT); SHORT INDICATOR -> short     */
/*   (short * for OUT and RETURN INDICATOR); RAW -> unsigned char *; LENGTH INT -> int (int * */
/*   for OUT); MAXLEN INT -> int *; STRING -> char *; RETURN INT -> int; RETURN STRING ->     */
/*   char *.                                                                                  */

/* PARAMETERS (CONTEXT, data RAW, data LENGTH INT, data INDICATOR SHORT, RETURN INT) */
typedef int (*spec_write_fn)(OCIExtProcContext *, unsigned char *, int, short);
/* PARAMETERS (CONTEXT, text STRING, text INDICATOR SHORT, RETURN INT) */
typedef int (*spec_line_fn)(OCIExtProcContext *, char *, short);
/* PARAMETERS (CONTEXT, proxy_id INT, flags INT, RETURN INT) */
typedef int (*spec_send_request_fn)(OCIExtProcContext *, int, int);
/* PARAMETERS (CONTEXT, RETURN INT): flush, last_request_id, last_rcode, close */
typedef int (*spec_context_only_fn)(OCIExtProcContext *);
/* PARAMETERS (CONTEXT, request_id INT, timeout_ms INT, buf RAW, buf LENGTH INT,
 *             buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT): read_request;
 * the same with (proxy_id INT, timeout_ms INT, ...) for call_sync and
 * (request_id INT, offset INT, ...) for read_chunk. */
#ifndef EMULATOR_WRONG_SPEC
typedef int (*spec_read_fn)(OCIExtProcContext *, int, int, unsigned char *, int *, int *,
                            short *);
#else
/* A deliberately wrong spec (MAXLEN by value), to prove the header check below can fail. */
typedef int (*spec_read_fn)(OCIExtProcContext *, int, int, unsigned char *, int *, int,
                            short *);
#endif
/* PARAMETERS (CONTEXT, proxy_id INT, timeout_ms INT, queue_on_timeout INT, buf RAW,
 *             buf LENGTH INT, buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT): call */
#ifndef EMULATOR_WRONG_SPEC
typedef int (*spec_call_fn)(OCIExtProcContext *, int, int, int, unsigned char *, int *, int *,
                            short *);
#else
typedef int (*spec_call_fn)(OCIExtProcContext *, int, int, int, unsigned char *, int *, int,
                            short *);
#endif
/* PARAMETERS (CONTEXT, service STRING, service INDICATOR SHORT, flags INT, RETURN INT) */
typedef int (*spec_send_request_to_fn)(OCIExtProcContext *, char *, short, int);
typedef int (*spec_send_request_to_const_fn)(OCIExtProcContext *, const char *, short, int);
/* PARAMETERS (CONTEXT, service STRING, service INDICATOR SHORT, timeout_ms INT,
 *             queue_on_timeout INT, buf RAW, buf LENGTH INT, buf MAXLEN INT,
 *             buf INDICATOR SHORT, RETURN INT): call_service */
typedef int (*spec_call_service_fn)(OCIExtProcContext *, char *, short, int, int,
                                    unsigned char *, int *, int *, short *);
typedef int (*spec_call_service_const_fn)(OCIExtProcContext *, const char *, short, int, int,
                                          unsigned char *, int *, int *, short *);
/* PARAMETERS (CONTEXT, request_id INT, RETURN INT) */
typedef int (*spec_cancel_fn)(OCIExtProcContext *, int);
/* PARAMETERS (CONTEXT, RETURN INDICATOR SHORT, RETURN STRING) */
typedef char *(*spec_last_error_fn)(OCIExtProcContext *, short *);

/* The header may declare IN pointers const (the function only reads them): same ABI. */
typedef int (*spec_write_const_fn)(OCIExtProcContext *, const unsigned char *, int, short);
typedef int (*spec_line_const_fn)(OCIExtProcContext *, const char *, short);

#define SPEC_OK(fn, spec) _Generic(&fn, spec : 1, default : 0)
#define SPEC_OK2(fn, spec, spec_const) _Generic(&fn, spec : 1, spec_const : 1, default : 0)

_Static_assert(SPEC_OK2(dco_ext_write, spec_write_fn, spec_write_const_fn),
               "dco_ext_write does not match its call spec");
_Static_assert(SPEC_OK2(dco_ext_line, spec_line_fn, spec_line_const_fn),
               "dco_ext_line does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_send_request, spec_send_request_fn),
               "dco_ext_send_request does not match its call spec");
_Static_assert(SPEC_OK2(dco_ext_send_request_to, spec_send_request_to_fn,
                        spec_send_request_to_const_fn),
               "dco_ext_send_request_to does not match its call spec");
_Static_assert(SPEC_OK2(dco_ext_call_service, spec_call_service_fn, spec_call_service_const_fn),
               "dco_ext_call_service does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_flush, spec_context_only_fn),
               "dco_ext_flush does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_read_request, spec_read_fn),
               "dco_ext_read_request does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_read_chunk, spec_read_fn),
               "dco_ext_read_chunk does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_call_sync, spec_read_fn),
               "dco_ext_call_sync does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_call, spec_call_fn), "dco_ext_call does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_last_request_id, spec_context_only_fn),
               "dco_ext_last_request_id does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_last_rcode, spec_context_only_fn),
               "dco_ext_last_rcode does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_cancel, spec_cancel_fn),
               "dco_ext_cancel does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_close, spec_context_only_fn),
               "dco_ext_close does not match its call spec");
_Static_assert(SPEC_OK(dco_ext_last_error, spec_last_error_fn),
               "dco_ext_last_error does not match its call spec");
_Static_assert(DCO_EXT_IND_NULL == -1 && DCO_EXT_IND_NOTNULL == 0,
               "indicators are OCI_IND_NULL (-1) and OCI_IND_NOTNULL (0)");
_Static_assert(DCO_EXT_ERROR_BASE == 20100, "ORA-201nn is DCO_E_-nn");
_Static_assert(sizeof(void *) == sizeof(spec_read_fn), "dlsym results fit function pointers");

/* Oracle's values, spelled here rather than taken from dco.h. */
#define IND_NULL ((short)-1)
#define IND_NOTNULL ((short)0)
#define RAW_MAX 32767 /* the largest PL/SQL RAW */
#define VARCHAR2_MAX 32767 /* the largest PL/SQL VARCHAR2 (a RETURN STRING must fit) */
#define ORA_MSG_MAX 512 /* OCIExtProcRaiseExcpWithMsg keeps at most this much */
#define BUFFERED 1
#define ONEWAY 2
/* A wait for a reply that must come: a hang guard, never a timed assertion. */
#define T 20000

/* ---------------------------------------------------------------------------------------- */
/* Checks                                                                                   */

static const char *g_scenario = "?";
static int checks, failures;
static int g_line; /* the line of the check in progress, for failures found inside a call */

static void failed(int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failed(int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    failures++;
    fprintf(stderr, "extproc_emulator.c:%d: [%s] FAILED: %s: ", line, g_scenario, expr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

#define EXPECT(cond)                                                                           \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(cond))                                                                           \
            failed(__LINE__, #cond, "false");                                                  \
    } while (0)

#define EXPECTF(cond, ...)                                                                     \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(cond))                                                                           \
            failed(__LINE__, #cond, __VA_ARGS__);                                              \
    } while (0)

static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        if (c < 0x80)
            k = 0;
        else if ((c & 0xe0) == 0xc0 && c >= 0xc2)
            k = 1;
        else if ((c & 0xf0) == 0xe0)
            k = 2;
        else if ((c & 0xf8) == 0xf0 && c <= 0xf4)
            k = 3;
        else
            return 0;
        if (n - i <= k) /* the sequence is cut by the end */
            return 0;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
        i += k + 1;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* The extproc side: contexts, exceptions, call memory                                      */

#define CTX_MAGIC 0x0c1e7c70u

struct callmem {
    struct callmem *next;
    unsigned char *p;
    size_t size;
};

/* Oracle's context is opaque to the library; this is the emulator's. */
struct OCIExtProcContext {
    uint32_t magic;          /* CTX_MAGIC while its call runs */
    unsigned long call;      /* which call of this process */
    int raised;              /* ociepmsg calls during this call */
    int errnum;              /* the first one's error number */
    char text[ORA_MSG_MAX + 32]; /* "ORA-nnnnn: message" */
    struct callmem *mem;     /* ociepacm allocations, freed when the call returns */
};

/* The context of the call in progress; NULL between calls. */
static OCIExtProcContext *g_ctx;
static unsigned long g_calls;

/* What the last call left for PL/SQL: an exception, or none. */
static struct {
    int raised;
    int errnum;
    char text[ORA_MSG_MAX + 32];
} g_exc;

/* The text of the last exception checked by ORA(), for later comparisons. */
static char g_ora_text[ORA_MSG_MAX + 32];

#if EMULATOR_WITH_OCI
static int current_context(OCIExtProcContext *ctx, const char *who)
{
    if (ctx == NULL || ctx != g_ctx || ctx->magic != CTX_MAGIC) {
        failed(g_line, who, "called with context %p, the call in progress has %p", (void *)ctx,
               (void *)g_ctx);
        return 0;
    }
    return 1;
}

/* Oracle's declarations (ociextp.h), exported from this executable. */
int ociepmsg(OCIExtProcContext *ctx, int errnum, const char *msg, size_t len);
void *ociepacm(OCIExtProcContext *ctx, size_t amount);

/* OCIExtProcRaiseExcpWithMsg: the exception is raised in PL/SQL once the call returns. */
int ociepmsg(OCIExtProcContext *ctx, int errnum, const char *msg, size_t len)
{
    if (!current_context(ctx, "ociepmsg"))
        return 1; /* OCIEXTPROC_ERROR */
    if (msg == NULL) {
        failed(g_line, "ociepmsg", "NULL message");
        return 1;
    }
    if (len == 0) /* Oracle: 0 means NUL-terminated */
        len = strlen(msg);
    if (errnum < 20000 || errnum > 20999)
        failed(g_line, "ociepmsg",
               "error number %d outside 20000..20999, where dco's exceptions are (Oracle "
               "takes 1..32767)",
               errnum);
    if (len > ORA_MSG_MAX)
        failed(g_line, "ociepmsg", "message of %zu bytes; Oracle keeps %d", len, ORA_MSG_MAX);
    if (memchr(msg, '\0', len) != NULL)
        failed(g_line, "ociepmsg", "message with a NUL byte inside its length");
    if (!utf8_valid((const unsigned char *)msg, len))
        failed(g_line, "ociepmsg", "message is not valid UTF-8 (cut inside a character?)");
    if (ctx->raised++ > 0) {
        failed(g_line, "ociepmsg", "a second exception in one call (ORA-%d after %s)", errnum,
               ctx->text);
        return 1;
    }
    ctx->errnum = errnum;
    int n = (int)(len > ORA_MSG_MAX ? ORA_MSG_MAX : len);
    snprintf(ctx->text, sizeof ctx->text, "ORA-%05d: %.*s", errnum, n, msg);
    return 0; /* OCIEXTPROC_SUCCESS */
}

/* OCIExtProcAllocCallMemory: memory that lives until the call returns (not zeroed). */
void *ociepacm(OCIExtProcContext *ctx, size_t amount)
{
    if (!current_context(ctx, "ociepacm"))
        return NULL;
    struct callmem *m = malloc(sizeof *m);
    if (m == NULL)
        return NULL;
    m->size = amount;
    m->p = malloc(amount > 0 ? amount : 1);
    if (m->p == NULL) {
        free(m);
        return NULL;
    }
    memset(m->p, 0xbe, amount);
    m->next = ctx->mem;
    ctx->mem = m;
    return m->p;
}
#endif

static OCIExtProcContext *begin_call(void)
{
    OCIExtProcContext *c = calloc(1, sizeof *c);
    if (c == NULL) {
        perror("calloc");
        exit(3);
    }
    c->magic = CTX_MAGIC;
    c->call = ++g_calls;
    g_ctx = c;
    return c;
}

/* The call returned: its exception goes to PL/SQL, its call memory and context are freed
 * (overwritten first, and freed memory is poisoned by ASan, so a pointer kept by the library
 * shows up). */
static void end_call(OCIExtProcContext *c)
{
    g_exc.raised = c->raised;
    g_exc.errnum = c->errnum;
    memcpy(g_exc.text, c->text, sizeof g_exc.text);
    while (c->mem != NULL) {
        struct callmem *m = c->mem;
        c->mem = m->next;
        memset(m->p, 0xdd, m->size);
        free(m->p);
        free(m);
    }
    memset(c, 0xdd, sizeof *c);
    free(c);
    g_ctx = NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* The library, by call spec                                                                */

static struct {
    spec_write_fn write;
    spec_line_fn line;
    spec_send_request_fn send_request;
    spec_context_only_fn flush;
    spec_read_fn read_request;
    spec_read_fn read_chunk;
    spec_read_fn call_sync;
    spec_call_fn call;
    spec_send_request_to_const_fn send_request_to;
    spec_call_service_const_fn call_service;
    spec_context_only_fn last_request_id;
    spec_context_only_fn last_rcode;
    spec_cancel_fn cancel;
    spec_context_only_fn close;
    spec_last_error_fn last_error;
} dco;

static void load_symbol(void *h, const char *name, void *slot, size_t size)
{
    void *p = dlsym(h, name);
    if (p == NULL) {
        fprintf(stderr, "extproc_emulator: %s is not exported: %s\n", name, dlerror());
        exit(3);
    }
    /* ISO C has no conversion from void * to a function pointer; POSIX guarantees the
     * representation, so copy it. */
    memcpy(slot, &p, size);
}

#define LOAD(h, field) load_symbol(h, "dco_ext_" #field, &dco.field, sizeof dco.field)

static void load_library(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "extproc_emulator: dlopen %s: %s\n", path, dlerror());
        exit(3);
    }
    LOAD(h, write);
    LOAD(h, line);
    LOAD(h, send_request);
    LOAD(h, flush);
    LOAD(h, read_request);
    LOAD(h, read_chunk);
    LOAD(h, call_sync);
    LOAD(h, call);
    LOAD(h, send_request_to);
    LOAD(h, call_service);
    LOAD(h, last_request_id);
    LOAD(h, last_rcode);
    LOAD(h, cancel);
    LOAD(h, close);
    LOAD(h, last_error);
    /* Never dlclose: extproc keeps the library for the session's life. */
}

/* ---------------------------------------------------------------------------------------- */
/* Calls as extproc makes them                                                              */

/* Whether the last call failed as PL/SQL would see it. */
static int call_failed(int rc)
{
#if EMULATOR_WITH_OCI
    (void)rc;
    return g_exc.raised;
#else
    return rc < 0;
#endif
}

static const char GARBAGE[] = "GARBAGE-GARBAGE";

/* dco.write(data RAW): a NULL RAW (ind -1) comes with an undefined pointer and length. */
static int x_write(const void *data, int len, short ind)
{
    unsigned char *copy = NULL;
    if (ind == IND_NULL) {
        copy = (unsigned char *)malloc(sizeof GARBAGE);
        memcpy(copy, GARBAGE, sizeof GARBAGE);
    } else if (len > 0) {
        copy = malloc((size_t)len); /* exactly LENGTH bytes: ASan sees an over-read */
        memcpy(copy, data, (size_t)len);
    } else {
        copy = malloc(1);
    }
    OCIExtProcContext *c = begin_call();
    int rc = dco.write(c, copy, len, ind);
    end_call(c);
    free(copy);
    return rc;
}

/* dco.line(text VARCHAR2): NULL text (ind -1) comes with an undefined pointer, or NULL. */
static int x_line(const char *text, short ind)
{
    char *copy = NULL;
    if (text != NULL) {
        size_t n = strlen(text) + 1;
        copy = malloc(n);
        memcpy(copy, text, n);
    }
    OCIExtProcContext *c = begin_call();
    int rc = dco.line(c, copy, ind);
    end_call(c);
    free(copy);
    return rc;
}

static int x_send(int proxy, int flags)
{
    OCIExtProcContext *c = begin_call();
    int rc = dco.send_request(c, proxy, flags);
    end_call(c);
    return rc;
}

static int x_simple(spec_context_only_fn fn)
{
    OCIExtProcContext *c = begin_call();
    int rc = fn(c);
    end_call(c);
    return rc;
}

#define x_flush() x_simple(dco.flush)
#define x_last_request_id() x_simple(dco.last_request_id)
#define x_last_rcode() x_simple(dco.last_rcode)
#define x_close() x_simple(dco.close)

static int x_cancel(int id)
{
    OCIExtProcContext *c = begin_call();
    int rc = dco.cancel(c, id);
    end_call(c);
    return rc;
}

/* A PL/SQL RAW variable passed as an OUT RAW. */
#define GUARD 64
struct raw_out {
    unsigned char *buf; /* maxlen bytes, then GUARD guard bytes */
    int maxlen;         /* the variable's size */
    int maxlen_arg;     /* MAXLEN, by reference */
    int len;            /* LENGTH, by reference */
    short ind;          /* INDICATOR, by reference */
    int bad_maxlen;     /* pass MAXLEN -1 (never done by Oracle; must not crash) */
};

static void raw_init(struct raw_out *o, int maxlen)
{
    memset(o, 0, sizeof *o);
    o->maxlen = maxlen;
    o->buf = malloc((size_t)maxlen + GUARD);
    if (o->buf == NULL) {
        perror("malloc");
        exit(3);
    }
}

static void raw_free(struct raw_out *o)
{
    free(o->buf);
    o->buf = NULL;
}

/* Before a call with an OUT RAW: guard bytes, garbage LENGTH and INDICATOR, MAXLEN. */
static void out_before(struct raw_out *o)
{
    memset(o->buf, 0xa5, (size_t)o->maxlen + GUARD);
    o->len = -7777;
    o->ind = 77;
    o->maxlen_arg = o->bad_maxlen ? -1 : o->maxlen;
}

/* After it: what the library left in the OUT RAW, checked; returns rc. */
static int out_after(const char *what, int rc, struct raw_out *o);

static int x_out(spec_read_fn fn, const char *what, int a, int b, struct raw_out *o)
{
    out_before(o);
    OCIExtProcContext *c = begin_call();
    int rc = fn(c, a, b, o->buf, &o->len, &o->maxlen_arg, &o->ind);
    end_call(c);
    return out_after(what, rc, o);
}

/* dco.call(proxy_id, reply, timeout, queue_on_timeout) by dco_ext_call. */
static int x_qcall(int proxy, int timeout, int queue_on_timeout, struct raw_out *o)
{
    out_before(o);
    OCIExtProcContext *c = begin_call();
    int rc = dco.call(c, proxy, timeout, queue_on_timeout, o->buf, &o->len, &o->maxlen_arg,
                      &o->ind);
    end_call(c);
    return out_after("dco_ext_call", rc, o);
}

/* dco.send_request(service => ...) by dco_ext_send_request_to (a NULL name: indicator -1). */
static int x_send_to(const char *service, int flags)
{
    OCIExtProcContext *c = begin_call();
    int rc = dco.send_request_to(c, service, service == NULL ? -1 : 0, flags);
    end_call(c);
    return rc;
}

/* dco.call(service => ..., reply, timeout, queue_on_timeout) by dco_ext_call_service. */
static int x_scall(const char *service, int timeout, int queue_on_timeout, struct raw_out *o)
{
    out_before(o);
    OCIExtProcContext *c = begin_call();
    int rc = dco.call_service(c, service, service == NULL ? -1 : 0, timeout, queue_on_timeout,
                              o->buf, &o->len, &o->maxlen_arg, &o->ind);
    end_call(c);
    return out_after("dco_ext_call_service", rc, o);
}

static int out_after(const char *what, int rc, struct raw_out *o)
{
    /* The library writes at most MAXLEN bytes and leaves MAXLEN alone. */
    checks++;
    for (int i = 0; i < GUARD; i++)
        if (o->buf[o->maxlen + i] != 0xa5) {
            failed(g_line, what, "wrote past MAXLEN %d (guard byte %d)", o->maxlen, i);
            break;
        }
    checks++;
    if (o->maxlen_arg != (o->bad_maxlen ? -1 : o->maxlen))
        failed(g_line, what, "changed MAXLEN to %d", o->maxlen_arg);
    if (!call_failed(rc)) {
        checks++;
        if (o->len < 0 || o->len > o->maxlen)
            failed(g_line, what, "LENGTH %d outside 0..MAXLEN %d", o->len, o->maxlen);
        else if (o->ind != (o->len == 0 ? IND_NULL : IND_NOTNULL))
            failed(g_line, what, "INDICATOR %d with LENGTH %d", o->ind, o->len);
        else if (rc < o->len)
            failed(g_line, what, "returned total %d less than LENGTH %d", rc, o->len);
    } else {
        /* PL/SQL does not see OUT values of a call that raised. */
        o->len = 0;
        o->ind = IND_NULL;
    }
    return rc;
}

#define x_call(proxy, timeout, o) x_out(dco.call_sync, "dco_ext_call_sync", proxy, timeout, o)
#define x_read(id, timeout, o) x_out(dco.read_request, "dco_ext_read_request", id, timeout, o)
#define x_chunk(id, offset, o) x_out(dco.read_chunk, "dco_ext_read_chunk", id, offset, o)

/* dco.last_error: the string is copied here before its call memory is freed. */
static char *g_last_error;

static const char *x_last_error(short *ind_out)
{
    short ind = 77;
    free(g_last_error);
    g_last_error = NULL;
    OCIExtProcContext *c = begin_call();
    char *p = dco.last_error(c, &ind);
    checks++;
    if (p != NULL) {
        /* A RETURN STRING must be call memory (extproc frees it after copying). */
        struct callmem *m = c->mem;
        while (m != NULL && (unsigned char *)p != m->p)
            m = m->next;
        if (m == NULL) {
            failed(g_line, "dco_ext_last_error", "returned %p, not memory from ociepacm",
                   (void *)p);
        } else if (memchr(p, '\0', m->size) == NULL) {
            failed(g_line, "dco_ext_last_error", "string not NUL-terminated in its %zu bytes",
                   m->size);
        } else {
            size_t n = strlen(p);
            if (n > VARCHAR2_MAX)
                failed(g_line, "dco_ext_last_error",
                       "a string of %zu bytes does not fit a PL/SQL VARCHAR2 (%d)", n,
                       VARCHAR2_MAX);
            if (!utf8_valid((const unsigned char *)p, n))
                failed(g_line, "dco_ext_last_error", "string is not valid UTF-8");
            g_last_error = malloc(n + 1);
            memcpy(g_last_error, p, n + 1);
        }
    }
    end_call(c);
    checks++;
    if (g_exc.raised)
        failed(g_line, "dco_ext_last_error", "raised %s", g_exc.text);
    checks++;
    if ((p == NULL && ind != IND_NULL) || (p != NULL && ind != IND_NOTNULL))
        failed(g_line, "dco_ext_last_error", "returned %s with RETURN INDICATOR %d",
               p == NULL ? "NULL" : "a string", ind);
    *ind_out = ind;
    return g_last_error;
}

/* ---------------------------------------------------------------------------------------- */
/* Expectations                                                                             */

/* The call succeeded (no exception, value >= 0); returns its value. */
static int expect_ok(const char *expr, int rc)
{
    checks++;
    if (g_exc.raised)
        failed(g_line, expr, "raised %s", g_exc.text);
    else if (rc < 0)
        failed(g_line, expr, "returned %d", rc);
    return rc;
}

static int expect_ret(const char *expr, int rc, int want)
{
    if (expect_ok(expr, rc) == rc && !g_exc.raised && rc >= 0) {
        checks++;
        if (rc != want)
            failed(g_line, expr, "returned %d, want %d", rc, want);
    }
    return rc;
}

/* The call raised ORA-<ora> named <name> (Oracle present), or returned the DCO_E_* code
 * (Oracle absent). */
static void expect_ora(const char *expr, int rc, int ora, const char *name)
{
    int code = -(ora - 20100);
    checks++;
    if (rc != code)
        failed(g_line, expr, "returned %d, want %d (%s)", rc, code, name);
    g_ora_text[0] = '\0';
#if EMULATOR_WITH_OCI
    checks++;
    char want[80];
    snprintf(want, sizeof want, "ORA-%05d: %s: ", ora, name);
    if (!g_exc.raised)
        failed(g_line, expr, "raised no exception, want %s...", want);
    else if (g_exc.errnum != ora || strncmp(g_exc.text, want, strlen(want)) != 0)
        failed(g_line, expr, "raised \"%s\", want \"%s...\"", g_exc.text, want);
    else
        memcpy(g_ora_text, g_exc.text, sizeof g_ora_text);
#else
    checks++;
    if (g_exc.raised)
        failed(g_line, expr, "raised an exception without Oracle");
#endif
}

#define OK(e) (g_line = __LINE__, expect_ok(#e, (e)))
#define RET(e, want) (g_line = __LINE__, expect_ret(#e, (e), (want)))
#define ORA(e, ora, name) (g_line = __LINE__, expect_ora(#e, (e), (ora), (name)))

/* dco_ext_last_error now: NULL (prefix NULL) or a string starting with `prefix` that begins
 * with the message of the last exception ORA() checked. Without Oracle it is always NULL. */
static void expect_last_error(int line, const char *prefix)
{
    short ind;
    g_line = line;
    const char *s = x_last_error(&ind);
    checks++;
#if EMULATOR_WITH_OCI
    if (prefix == NULL) {
        if (s != NULL)
            failed(line, "last_error", "is \"%s\", want NULL", s);
        return;
    }
    if (s == NULL) {
        failed(line, "last_error", "is NULL, want \"%s...\"", prefix);
        return;
    }
    if (strncmp(s, prefix, strlen(prefix)) != 0) {
        failed(line, "last_error", "is \"%.200s\", want \"%s...\"", s, prefix);
        return;
    }
    /* The exception's message is the text of last_error, cut to Oracle's length. */
    const char *msg = strstr(g_ora_text, ": ");
    checks++;
    if (g_ora_text[0] != '\0' && (msg == NULL || strncmp(s, msg + 2, strlen(msg + 2)) != 0))
        failed(line, "last_error", "\"%.200s\" does not begin with the exception's \"%s\"", s,
               g_ora_text);
#else
    (void)prefix;
    if (s != NULL)
        failed(line, "last_error", "is \"%s\" without Oracle's allocator", s);
#endif
}

#define LAST_ERROR(prefix) expect_last_error(__LINE__, prefix)

/* The OUT RAW holds the whole reply `want` (rc is the call's value). */
static void expect_reply(int line, const char *what, int rc, const struct raw_out *o,
                         const void *want, size_t n)
{
    checks++;
    if (rc != (int)n)
        failed(line, what, "total %d, want %zu", rc, n);
    else if (o->len != (int)n)
        failed(line, what, "LENGTH %d, want %zu", o->len, n);
    else if (memcmp(o->buf, want, n) != 0)
        failed(line, what, "reply \"%.*s\" differs from \"%.*s\"", o->len, (const char *)o->buf,
               (int)n, (const char *)want);
}

#define REPLY(rc, o, want, n) expect_reply(__LINE__, #rc, rc, o, want, n)
#define REPLY_STR(rc, o, s) expect_reply(__LINE__, #rc, rc, o, s, strlen(s))

/* Reads the rest of reply `id` (whose first o->len bytes of `total` are in o) with
 * read_chunk into `chunk`, and returns the whole reply, malloc'd. */
static unsigned char *read_rest(int line, int id, int total, const struct raw_out *first,
                                struct raw_out *chunk)
{
    unsigned char *all = malloc((size_t)total + 1);
    int have = first->len;
    memcpy(all, first->buf, (size_t)have);
    int rounds = 0;
    while (have < total && rounds++ < 10000) {
        g_line = line;
        int rc = expect_ok("dco_ext_read_chunk", x_chunk(id, have, chunk));
        checks++;
        if (rc != total || chunk->len <= 0) {
            failed(line, "read_rest", "chunk at %d: returned %d, LENGTH %d (total %d)", have,
                   rc, chunk->len, total);
            break;
        }
        memcpy(all + have, chunk->buf, (size_t)chunk->len);
        have += chunk->len;
    }
    checks++;
    if (have != total)
        failed(line, "read_rest", "assembled %d bytes of %d", have, total);
    return all;
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 131u + i / 251u + seed) & 0xffu);
}

/* Appends `n` bytes with dco.write in RAW-sized pieces. */
static void write_all(const unsigned char *p, size_t n)
{
    for (size_t off = 0; off < n; off += RAW_MAX) {
        int k = (int)(n - off < RAW_MAX ? n - off : RAW_MAX);
        RET(x_write(p + off, k, IND_NOTNULL), 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Scenarios                                                                                */

static int g_p[4]; /* the proxy arguments */

static void scenario_probe(void)
{
    RET(x_line("probe", IND_NOTNULL), 0);
    ORA(x_send(1, 64), 20101, "DCO_E_INVALID");
    LAST_ERROR("DCO_E_INVALID:");
    RET(x_close(), 0);
    printf("probe ok\n");
}

static void scenario_calls(void)
{
    const int echo = g_p[0], unserved = g_p[1];
    struct raw_out o, small, piece;
    raw_init(&o, RAW_MAX);
    raw_init(&small, 10);
    raw_init(&piece, 1000);
    int rc, id;

    /* Oracle's entry points are visible to the library exactly when Oracle is there. */
    EXPECT((dlsym(RTLD_DEFAULT, "ociepmsg") != NULL) == EMULATOR_WITH_OCI);
    EXPECT((dlsym(RTLD_DEFAULT, "ociepacm") != NULL) == EMULATOR_WITH_OCI);

    /* A new session: nothing sent, nothing failed. */
    RET(x_last_request_id(), 0);
    RET(x_last_rcode(), 0);
    LAST_ERROR(NULL);

    /* line + write, then call_sync: the reply is the body, byte for byte. */
    static const unsigned char bin[] = {0x00, 0x01, 0xff, 'x'};
    RET(x_line("hello", IND_NOTNULL), 0);
    RET(x_write(bin, 4, IND_NOTNULL), 0);
    RET(x_line("world", IND_NOTNULL), 0);
    rc = OK(x_call(echo, T, &o));
    REPLY(rc, &o, "hello\n\0\1\377xworld\n", 16);
    RET(x_last_request_id(), 1);
    RET(x_last_rcode(), 0);
    LAST_ERROR(NULL);

    /* NULL arguments: a NULL RAW appends nothing, whatever its (undefined) pointer and length;
     * a NULL VARCHAR2 appends just the newline; an empty RAW appends nothing. */
    RET(x_write(NULL, 15, IND_NULL), 0);
    RET(x_write(NULL, -5, IND_NULL), 0);
    RET(x_line(GARBAGE, IND_NULL), 0);
    RET(x_write(bin, 0, IND_NOTNULL), 0);
    RET(x_write(bin + 1, 1, IND_NOTNULL), 0);
    RET(x_line(NULL, IND_NULL), 0);
    rc = OK(x_call(echo, T, &o));
    REPLY(rc, &o, "\n\1\n", 3);

    /* An empty body: the reply is an empty RAW, which Oracle calls NULL (checked by x_out). */
    rc = OK(x_call(echo, T, &o));
    REPLY(rc, &o, "", 0);
    EXPECT(o.ind == IND_NULL);

    /* MAXLEN smaller than the reply: the total is returned, MAXLEN bytes copied, the rest
     * read by chunks; a chunk reaching the end releases the reply. */
    RET(x_line("abcdefghijklmnopqrstuvwx", IND_NOTNULL), 0);
    rc = OK(x_call(echo, T, &small));
    EXPECTF(rc == 25 && small.len == 10 && memcmp(small.buf, "abcdefghij", 10) == 0,
            "rc %d len %d", rc, small.len);
    id = RET(x_last_request_id(), 4);
    rc = OK(x_chunk(id, 10, &small));
    EXPECTF(rc == 25 && small.len == 10 && memcmp(small.buf, "klmnopqrst", 10) == 0,
            "rc %d len %d", rc, small.len);
    rc = OK(x_chunk(id, 0, &small)); /* any offset, again */
    EXPECTF(rc == 25 && small.len == 10 && memcmp(small.buf, "abcdefghij", 10) == 0,
            "rc %d len %d", rc, small.len);
    rc = OK(x_chunk(id, 20, &small));
    EXPECTF(rc == 25 && small.len == 5 && memcmp(small.buf, "uvwx\n", 5) == 0, "rc %d len %d",
            rc, small.len);
    ORA(x_chunk(id, 20, &small), 20106, "DCO_E_UNKNOWN_ID");
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* The same through read_request: a reply too large for MAXLEN stays until read whole. */
    RET(x_line("0123456789ABCDEF", IND_NOTNULL), 0);
    id = OK(x_send(echo, 0));
    rc = OK(x_read(id, T, &small));
    EXPECTF(rc == 17 && small.len == 10 && memcmp(small.buf, "0123456789", 10) == 0,
            "rc %d len %d", rc, small.len);
    rc = OK(x_read(id, T, &small));
    EXPECTF(rc == 17 && small.len == 10, "rc %d len %d", rc, small.len);
    rc = OK(x_read(id, T, &o));
    REPLY_STR(rc, &o, "0123456789ABCDEF\n");
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* A reply larger than 32767 bytes: the body written in RAW-sized pieces, the reply read by
     * call_sync then chunks, reassembled and compared byte for byte. */
    size_t big_n = 100000;
    unsigned char *big = malloc(big_n);
    fill_pattern(big, big_n, 7);
    write_all(big, big_n);
    rc = OK(x_call(echo, T, &o));
    EXPECTF(rc == (int)big_n && o.len == RAW_MAX, "rc %d len %d", rc, o.len);
    id = OK(x_last_request_id());
    if (rc == (int)big_n && o.len == RAW_MAX) {
        unsigned char *all = read_rest(__LINE__, id, rc, &o, &o);
        EXPECT(memcmp(all, big, big_n) == 0);
        free(all);
    }
    ORA(x_chunk(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* The same by buffered send, flush, read_request, and chunks of 1000 bytes. */
    fill_pattern(big, big_n, 99);
    write_all(big, 70001);
    id = OK(x_send(echo, BUFFERED));
    RET(x_flush(), 0);
    rc = OK(x_read(id, T, &o));
    EXPECTF(rc == 70001 && o.len == RAW_MAX, "rc %d len %d", rc, o.len);
    if (rc == 70001 && o.len == RAW_MAX) {
        unsigned char *all = read_rest(__LINE__, id, rc, &o, &piece);
        EXPECT(memcmp(all, big, 70001) == 0);
        free(all);
    }
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* Exactly 32767 bytes: read whole at once, and released. */
    write_all(big, RAW_MAX);
    rc = OK(x_call(echo, T, &o));
    REPLY(rc, &o, big, RAW_MAX);
    ORA(x_chunk(OK(x_last_request_id()), 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    free(big);

    /* Buffered sends, one flush, replies read out of order (from both ends inwards). */
    int ids[20];
    char body[64];
    for (int i = 0; i < 20; i++) {
        snprintf(body, sizeof body, "request %d", i);
        RET(x_line(body, IND_NOTNULL), 0);
        unsigned char b = (unsigned char)(i * 13);
        RET(x_write(&b, 1, IND_NOTNULL), 0);
        ids[i] = OK(x_send(echo, BUFFERED));
        if (i > 0)
            EXPECTF(ids[i] == ids[i - 1] + 1, "id %d after %d", ids[i], ids[i - 1]);
    }
    RET(x_flush(), 0);
    for (int k = 0; k < 20; k++) {
        int i = k % 2 == 0 ? 19 - k / 2 : k / 2;
        int n = snprintf(body, sizeof body, "request %d\n", i);
        body[n] = (char)(unsigned char)(i * 13);
        rc = OK(x_read(ids[i], T, &o));
        REPLY(rc, &o, body, (size_t)n + 1);
    }
    ORA(x_read(ids[7], 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    RET(x_flush(), 0); /* nothing waiting */

    /* Reading a buffered request sends it, flushed or not. */
    RET(x_line("unflushed", IND_NOTNULL), 0);
    id = OK(x_send(echo, BUFFERED));
    rc = OK(x_read(id, T, &o));
    REPLY_STR(rc, &o, "unflushed\n");

    /* Session state lives between calls: a body built over three calls, sent in a fourth,
     * another request made and read, then the first read in a later call. */
    RET(x_line("first part", IND_NOTNULL), 0);
    RET(x_write("+raw", 4, IND_NOTNULL), 0);
    int first = OK(x_send(echo, 0));
    RET(x_line("in between", IND_NOTNULL), 0);
    rc = OK(x_call(echo, T, &o));
    REPLY_STR(rc, &o, "in between\n");
    RET(x_last_request_id(), first + 1);
    rc = OK(x_read(first, T, &o));
    REPLY_STR(rc, &o, "first part\n+raw");

    /* One-way requests get an id but no reply. */
    RET(x_line("one way", IND_NOTNULL), 0);
    id = OK(x_send(echo, ONEWAY));
    EXPECT(id > first);
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    RET(x_line("one way, buffered", IND_NOTNULL), 0);
    id = OK(x_send(echo, BUFFERED | ONEWAY));
    RET(x_flush(), 0);
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* Cancel: reading the id says it was cancelled, once; then it is gone. */
    RET(x_line("cancel me", IND_NOTNULL), 0);
    id = OK(x_send(echo, BUFFERED));
    RET(x_cancel(id), 0);
    ORA(x_read(id, 0, &o), 20110, "DCO_E_CANCELLED");
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    ORA(x_cancel(id), 20106, "DCO_E_UNKNOWN_ID");
    ORA(x_cancel(0), 20106, "DCO_E_UNKNOWN_ID");
    ORA(x_cancel(-3), 20106, "DCO_E_UNKNOWN_ID");

    /* Unknown ids. */
    ORA(x_read(999999, 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    LAST_ERROR("DCO_E_UNKNOWN_ID:");
    ORA(x_read(0, 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    ORA(x_read(-1, T, &o), 20106, "DCO_E_UNKNOWN_ID");
    ORA(x_chunk(999999, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* Invalid arguments; the body survives a refused send (as dco_send_request's does). */
    RET(x_line("kept", IND_NOTNULL), 0);
    ORA(x_send(echo, 4), 20101, "DCO_E_INVALID");
    LAST_ERROR("DCO_E_INVALID:");
    ORA(x_send(echo, -1), 20101, "DCO_E_INVALID");
    ORA(x_send(-1, 0), 20101, "DCO_E_INVALID");
    ORA(x_write(bin, -1, IND_NOTNULL), 20101, "DCO_E_INVALID");
    ORA(x_chunk(0, 0, &o), 20101, "DCO_E_INVALID");
    ORA(x_chunk(1, -1, &o), 20101, "DCO_E_INVALID");
    o.bad_maxlen = 1;
    ORA(x_read(1, 0, &o), 20101, "DCO_E_INVALID");
    ORA(x_call(echo, T, &o), 20101, "DCO_E_INVALID");
    o.bad_maxlen = 0;
    id = OK(x_send(echo, 0));
    rc = OK(x_read(id, T, &o));
    REPLY_STR(rc, &o, "kept\n");
    LAST_ERROR(NULL);

    /* No route: an unknown proxy, by call_sync and by send + read (which releases it). */
    RET(x_line("anybody?", IND_NOTNULL), 0);
    ORA(x_call(unserved, T, &o), 20103, "DCO_E_NO_ROUTE");
    LAST_ERROR("DCO_E_NO_ROUTE:");
    RET(x_line("anybody at all?", IND_NOTNULL), 0);
    id = OK(x_send(unserved, 0));
    ORA(x_read(id, T, &o), 20103, "DCO_E_NO_ROUTE");
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* A success after failures clears the last error. */
    rc = OK(x_call(echo, T, &o));
    REPLY(rc, &o, "", 0);
    LAST_ERROR(NULL);

    RET(x_close(), 0);
    raw_free(&o);
    raw_free(&small);
    raw_free(&piece);
}

static void scenario_app(void)
{
    const int app = g_p[0];
    struct raw_out o;
    raw_init(&o, RAW_MAX);
    int rc, id;

    RET(x_line("make me loud", IND_NOTNULL), 0);
    rc = OK(x_call(app, T, &o));
    REPLY_STR(rc, &o, "MAKE ME LOUD\n");
    RET(x_last_rcode(), 0);

    /* An application failure by call_sync: ORA-20108, the worker's code from last_rcode, its
     * reply as the message. */
    RET(x_write("fail 42", 7, IND_NOTNULL), 0);
    ORA(x_call(app, T, &o), 20108, "DCO_E_APP_FAIL");
    EXPECTF(strstr(g_ora_text, "failed on purpose with code 42") != NULL || !EMULATOR_WITH_OCI,
            "exception \"%s\"", g_ora_text);
    RET(x_last_rcode(), 42);
    LAST_ERROR("DCO_E_APP_FAIL: failed on purpose with code 42");
    RET(x_last_rcode(), 42); /* reading the error does not change it */

    /* By buffered send, flush and read_request; the failure releases the request. */
    RET(x_write("fail 7", 6, IND_NOTNULL), 0);
    id = OK(x_send(app, BUFFERED));
    RET(x_flush(), 0);
    ORA(x_read(id, T, &o), 20108, "DCO_E_APP_FAIL");
    RET(x_last_rcode(), 7);
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* The session goes on, and a success resets the code. */
    RET(x_line("again", IND_NOTNULL), 0);
    rc = OK(x_call(app, T, &o));
    REPLY_STR(rc, &o, "AGAIN\n");
    RET(x_last_rcode(), 0);
    LAST_ERROR(NULL);

    /* A failure whose reply is 81 kB ("ab", then three-byte characters): the exception
     * message is cut to Oracle's length on a character boundary (checked in ociepmsg),
     * last_error to what a VARCHAR2 holds (checked in x_last_error); both cut, not dropped. */
    RET(x_write("failbig", 7, IND_NOTNULL), 0);
    ORA(x_call(app, T, &o), 20108, "DCO_E_APP_FAIL");
    EXPECTF(!EMULATOR_WITH_OCI || strlen(g_ora_text) > 450, "exception of %zu bytes",
            strlen(g_ora_text));
    RET(x_last_rcode(), 9);
    LAST_ERROR("DCO_E_APP_FAIL: ab\xe2\x82\xac");
    EXPECTF(!EMULATOR_WITH_OCI || (g_last_error && strlen(g_last_error) > 32700),
            "last_error of %zu bytes", g_last_error ? strlen(g_last_error) : 0);

    RET(x_close(), 0);
    raw_free(&o);
}

static void scenario_gate(void)
{
    const int gate = g_p[0], ctrl = g_p[1], echo = g_p[2];
    struct raw_out o;
    raw_init(&o, RAW_MAX);
    char body[64], key[32];
    int rc;
    snprintf(key, sizeof key, "%ld", (long)getpid());

    /* call_sync with timeout 0 on a request the worker holds: ORA-20102, and the request is
     * given up (its late reply dropped). */
    snprintf(body, sizeof body, "hold %s a", key);
    RET(x_write(body, (int)strlen(body), IND_NOTNULL), 0);
    ORA(x_call(gate, 0, &o), 20102, "DCO_E_TIMEOUT");
    LAST_ERROR("DCO_E_TIMEOUT:");
    int a = OK(x_last_request_id());
    ORA(x_read(a, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* And with a short timeout. */
    snprintf(body, sizeof body, "hold %s b", key);
    RET(x_write(body, (int)strlen(body), IND_NOTNULL), 0);
    ORA(x_call(gate, 100, &o), 20102, "DCO_E_TIMEOUT");
    int b = OK(x_last_request_id());
    EXPECT(b == a + 1);

    /* read_request timing out leaves the request outstanding. */
    snprintf(body, sizeof body, "hold %s c", key);
    RET(x_write(body, (int)strlen(body), IND_NOTNULL), 0);
    int c = OK(x_send(gate, 0));
    ORA(x_read(c, 0, &o), 20102, "DCO_E_TIMEOUT");
    ORA(x_read(c, 100, &o), 20102, "DCO_E_TIMEOUT");
    snprintf(body, sizeof body, "hold %s d", key);
    RET(x_write(body, (int)strlen(body), IND_NOTNULL), 0);
    int d = OK(x_send(gate, BUFFERED));
    RET(x_flush(), 0);
    ORA(x_read(d, 0, &o), 20102, "DCO_E_TIMEOUT");

    /* Timeouts do not stop the session. */
    RET(x_line("meanwhile", IND_NOTNULL), 0);
    rc = OK(x_call(echo, T, &o));
    REPLY_STR(rc, &o, "meanwhile\n");

    /* Open the gate: the held requests are answered, read out of order. */
    snprintf(body, sizeof body, "open %s", key);
    RET(x_write(body, (int)strlen(body), IND_NOTNULL), 0);
    rc = OK(x_call(ctrl, T, &o));
    snprintf(body, sizeof body, "opened %s", key);
    REPLY_STR(rc, &o, body);
    rc = OK(x_read(d, T, &o));
    snprintf(body, sizeof body, "hold %s d", key);
    REPLY_STR(rc, &o, body);
    rc = OK(x_read(c, T, &o));
    snprintf(body, sizeof body, "hold %s c", key);
    REPLY_STR(rc, &o, body);
    ORA(x_read(a, 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    ORA(x_read(b, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    RET(x_close(), 0);
    raw_free(&o);
}

static void scenario_close(void)
{
    const int echo = g_p[0];
    struct raw_out o, small;
    raw_init(&o, RAW_MAX);
    raw_init(&small, 10);
    int rc;

    /* Close drops buffered requests and the body being built. */
    RET(x_line("kept for a while", IND_NOTNULL), 0);
    int id = OK(x_send(echo, BUFFERED));
    RET(x_line("never sent", IND_NOTNULL), 0);
    RET(x_close(), 0);
    RET(x_last_request_id(), 0);
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    RET(x_line("fresh", IND_NOTNULL), 0);
    rc = OK(x_call(echo, T, &o));
    REPLY_STR(rc, &o, "fresh\n");
    RET(x_last_request_id(), 1);

    /* A reply parked by a small MAXLEN goes with the session. */
    RET(x_line("longer than ten bytes", IND_NOTNULL), 0);
    rc = OK(x_call(echo, T, &small));
    EXPECTF(rc == 22 && small.len == 10, "rc %d len %d", rc, small.len);
    id = RET(x_last_request_id(), 2);
    RET(x_close(), 0);
    RET(x_close(), 0);
    ORA(x_chunk(id, 10, &small), 20106, "DCO_E_UNKNOWN_ID");

    /* And a new session works. */
    RET(x_line("new", IND_NOTNULL), 0);
    rc = OK(x_call(echo, T, &o));
    REPLY_STR(rc, &o, "new\n");
    RET(x_last_request_id(), 1);
    RET(x_close(), 0);
    raw_free(&o);
    raw_free(&small);
}

/* dco.call(service => ...) and dco.send_request(service => ...): the hub (tests/extproc.rs
 * starts it with --route echo.svc=ECHO) routes echo.svc to the echo worker; nobody.svc has no
 * route; bad names raise ORA-20101 before anything is sent. */
static void scenario_service(void)
{
    struct raw_out o;
    raw_init(&o, RAW_MAX);
    int rc, id;

    RET(x_line("by name", IND_NOTNULL), 0);
    rc = OK(x_scall("echo.svc", T, 0, &o));
    REPLY_STR(rc, &o, "by name\n");
    RET(x_last_request_id(), 1);
    LAST_ERROR(NULL);

    /* send_request(service => ...) buffered, flushed, read by id. */
    RET(x_line("sent by name", IND_NOTNULL), 0);
    id = RET(x_send_to("echo.svc", 1), 2);
    RET(x_simple(dco.flush), 0);
    rc = OK(x_read(id, T, &o));
    REPLY_STR(rc, &o, "sent by name\n");

    /* No route: ORA-20103 with the name in the words. */
    RET(x_line("lost", IND_NOTNULL), 0);
    ORA(x_scall("nobody.svc", T, 0, &o), 20103, "DCO_E_NO_ROUTE");
    LAST_ERROR("DCO_E_NO_ROUTE: no route for service \"nobody.svc\"");

    /* Bad names: NULL, empty, with a space, bad queue_on_timeout; nothing is sent. */
    ORA(x_send_to(NULL, 0), 20101, "DCO_E_INVALID");
    ORA(x_send_to("", 0), 20101, "DCO_E_INVALID");
    ORA(x_send_to("two words", 0), 20101, "DCO_E_INVALID");
    ORA(x_send_to("echo.svc", 8), 20101, "DCO_E_INVALID");
    ORA(x_scall(NULL, T, 0, &o), 20101, "DCO_E_INVALID");
    ORA(x_scall("echo.svc", T, 2, &o), 20101, "DCO_E_INVALID");
    RET(x_last_request_id(), 3);
    RET(x_close(), 0);
    raw_free(&o);
}

/* dco.call by dco_ext_call. SLOW answers each request (an echo) only after a delay far longer
 * than the short timeouts here (tests/extproc.rs starts it with 1500 ms). */
static void scenario_queue(void)
{
    const int echo = g_p[0], slow = g_p[1], unserved = g_p[2];
    struct raw_out o, small;
    raw_init(&o, RAW_MAX);
    raw_init(&small, 10);
    int rc, id;

    /* queue_on_timeout 0 against the echo worker: the reply, as call_sync gives it. */
    RET(x_line("plain call", IND_NOTNULL), 0);
    rc = OK(x_qcall(echo, T, 0, &o));
    REPLY_STR(rc, &o, "plain call\n");
    RET(x_last_request_id(), 1);
    RET(x_last_rcode(), 0);
    LAST_ERROR(NULL);

    /* queue_on_timeout 1 and the answer in time: a plain reply too. */
    RET(x_line("in time", IND_NOTNULL), 0);
    rc = OK(x_qcall(echo, T, 1, &o));
    REPLY_STR(rc, &o, "in time\n");
    RET(x_last_request_id(), 2);

    /* MAXLEN smaller than the reply: the total, MAXLEN bytes, the rest by chunks of the last
     * request id; the last chunk releases it. */
    RET(x_line("abcdefghijklmnopqrstuvwx", IND_NOTNULL), 0);
    rc = OK(x_qcall(echo, T, 1, &small));
    EXPECTF(rc == 25 && small.len == 10 && memcmp(small.buf, "abcdefghij", 10) == 0,
            "rc %d len %d", rc, small.len);
    id = RET(x_last_request_id(), 3);
    rc = OK(x_chunk(id, 10, &small));
    EXPECTF(rc == 25 && small.len == 10 && memcmp(small.buf, "klmnopqrst", 10) == 0,
            "rc %d len %d", rc, small.len);
    rc = OK(x_chunk(id, 20, &small));
    EXPECTF(rc == 25 && small.len == 5 && memcmp(small.buf, "uvwx\n", 5) == 0, "rc %d len %d",
            rc, small.len);
    ORA(x_chunk(id, 0, &small), 20106, "DCO_E_UNKNOWN_ID");

    /* queue_on_timeout 1 against the slow worker with a short timeout: ORA-20114 (queued);
     * the request goes on, and its answer is read by the last request id. */
    RET(x_line("slow and queued", IND_NOTNULL), 0);
    ORA(x_qcall(slow, 200, 1, &o), 20114, "DCO_E_QUEUED");
    LAST_ERROR("DCO_E_QUEUED:");
    id = RET(x_last_request_id(), 4);
    rc = OK(x_read(id, T, &o));
    REPLY_STR(rc, &o, "slow and queued\n");
    RET(x_last_rcode(), 0);
    LAST_ERROR(NULL);
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    /* Timeout 0 only looks: queued at once. Then queue_on_timeout 0 against the slow worker:
     * ORA-20102 (timeout), and that request is given up while the queued one is kept. */
    RET(x_line("looked at", IND_NOTNULL), 0);
    ORA(x_qcall(slow, 0, 1, &o), 20114, "DCO_E_QUEUED");
    int looked = RET(x_last_request_id(), 5);
    RET(x_line("given up", IND_NOTNULL), 0);
    ORA(x_qcall(slow, 200, 0, &o), 20102, "DCO_E_TIMEOUT");
    LAST_ERROR("DCO_E_TIMEOUT:");
    id = RET(x_last_request_id(), looked + 1);
    ORA(x_read(id, 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    rc = OK(x_read(looked, T, &o));
    REPLY_STR(rc, &o, "looked at\n");

    /* Invalid arguments raise ORA-20101 and keep the body. */
    RET(x_line("kept", IND_NOTNULL), 0);
    ORA(x_qcall(echo, T, 2, &o), 20101, "DCO_E_INVALID");
    LAST_ERROR("DCO_E_INVALID:");
    ORA(x_qcall(echo, T, -1, &o), 20101, "DCO_E_INVALID");
    ORA(x_qcall(-1, T, 1, &o), 20101, "DCO_E_INVALID");
    o.bad_maxlen = 1;
    ORA(x_qcall(echo, T, 1, &o), 20101, "DCO_E_INVALID");
    o.bad_maxlen = 0;
    id = OK(x_last_request_id());
    rc = OK(x_qcall(echo, T, 1, &o));
    REPLY_STR(rc, &o, "kept\n");
    RET(x_last_request_id(), id + 1);

    /* No route is the request's outcome, not a timeout: ORA-20103 with queue_on_timeout too,
     * and the request is released. */
    RET(x_line("anybody?", IND_NOTNULL), 0);
    ORA(x_qcall(unserved, T, 1, &o), 20103, "DCO_E_NO_ROUTE");
    LAST_ERROR("DCO_E_NO_ROUTE:");
    ORA(x_read(OK(x_last_request_id()), 0, &o), 20106, "DCO_E_UNKNOWN_ID");

    RET(x_close(), 0);
    raw_free(&o);
    raw_free(&small);
}

/* One of the two sessions of scenario "sessions": `n` buffered requests tagged `tag`, then a
 * rendezvous with the other session, then the replies. Returns the number of failures. */
static int session_child(const char *lib, char tag, int n, int echo, int to_other,
                         int from_other)
{
    char name[32];
    snprintf(name, sizeof name, "sessions/%c", tag);
    g_scenario = name;
    checks = failures = 0;
    load_library(lib);
    struct raw_out o;
    raw_init(&o, RAW_MAX);
    char body[64];
    char x = tag;
    for (int i = 1; i <= n; i++) {
        snprintf(body, sizeof body, "session %c request %d", tag, i);
        RET(x_line(body, IND_NOTNULL), 0);
        RET(x_send(echo, BUFFERED), i);
    }
    RET(x_flush(), 0);
    /* Both sessions have their requests, with the same ids, at the hub now. */
    EXPECT(write(to_other, &x, 1) == 1);
    EXPECT(read(from_other, &x, 1) == 1);
    /* The other session's ids beyond ours are unknown here. */
    for (int i = n + 1; i <= 8; i++)
        ORA(x_read(i, 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    for (int i = n; i >= 1; i--) {
        int rc = OK(x_read(i, T, &o));
        snprintf(body, sizeof body, "session %c request %d\n", tag, i);
        REPLY_STR(rc, &o, body);
    }
    /* Wait until the other has read its replies too before closing. */
    EXPECT(write(to_other, &x, 1) == 1);
    EXPECT(read(from_other, &x, 1) == 1);
    RET(x_close(), 0);
    raw_free(&o);
    printf("extproc_emulator %s: %d checks, %d failed\n", name, checks, failures);
    fflush(stdout);
    return failures;
}

static void scenario_sessions(const char *lib)
{
    int ab[2], ba[2];
    if (pipe(ab) != 0 || pipe(ba) != 0) {
        perror("pipe");
        exit(3);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t a = fork();
    if (a == 0) {
        close(ab[0]);
        close(ba[1]);
        exit(session_child(lib, 'A', 5, g_p[0], ab[1], ba[0]) ? 1 : 0);
    }
    pid_t b = fork();
    if (b == 0) {
        close(ba[0]);
        close(ab[1]);
        exit(session_child(lib, 'B', 8, g_p[0], ba[1], ab[0]) ? 1 : 0);
    }
    close(ab[0]);
    close(ab[1]);
    close(ba[0]);
    close(ba[1]);
    EXPECT(a > 0 && b > 0);
    pid_t kids[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        int st = 0;
        if (kids[k] <= 0)
            continue;
        while (waitpid(kids[k], &st, 0) < 0 && errno == EINTR)
            ;
        EXPECTF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "session %c ended with status %#x",
                k == 0 ? 'A' : 'B', st);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void scenario_not_connected(void)
{
    const int echo = g_p[0];
    struct raw_out o;
    raw_init(&o, RAW_MAX);

    /* A flush tries for DCO_FLUSH_TIMEOUT_MS, read when the session is made (the first call
     * below), as the agent's environment would give it. */
    setenv("DCO_FLUSH_TIMEOUT_MS", "300", 1);
    /* Building a body needs no hub. */
    RET(x_line("queued", IND_NOTNULL), 0);
    RET(x_write("!", 1, IND_NOTNULL), 0);
    /* Sending now does, and fails at once. */
    ORA(x_send(echo, 0), 20104, "DCO_E_NOT_CONNECTED");
    LAST_ERROR("DCO_E_NOT_CONNECTED:");
    /* A call keeps trying until its timeout (it rides through a hub restart), never returning
     * early, then says the same; timeout 0 tries once. dco.call too, with queue_on_timeout:
     * nothing was taken, so nothing is queued. */
    double t0 = now_s();
    ORA(x_call(echo, 300, &o), 20104, "DCO_E_NOT_CONNECTED");
    double t1 = now_s();
    EXPECTF(t1 - t0 >= 0.3, "returned after %.3f s", t1 - t0);
    ORA(x_call(echo, 0, &o), 20104, "DCO_E_NOT_CONNECTED");
    ORA(x_qcall(echo, 300, 1, &o), 20104, "DCO_E_NOT_CONNECTED");
    ORA(x_qcall(echo, 0, 0, &o), 20104, "DCO_E_NOT_CONNECTED");
    EXPECTF(now_s() - t0 < 10.0, "took %.3f s", now_s() - t0); /* a hang guard */
    RET(x_last_request_id(), 0); /* nothing was taken */
    /* A buffered request is taken; flushing and reading it fail, it stays outstanding. */
    RET(x_send(echo, BUFFERED), 1);
    ORA(x_flush(), 20104, "DCO_E_NOT_CONNECTED");
    ORA(x_read(1, 300, &o), 20104, "DCO_E_NOT_CONNECTED");
    ORA(x_read(1, 0, &o), 20104, "DCO_E_NOT_CONNECTED");
    LAST_ERROR("DCO_E_NOT_CONNECTED:");
    RET(x_cancel(1), 0);
    ORA(x_read(1, 0, &o), 20110, "DCO_E_CANCELLED");
    ORA(x_read(1, 0, &o), 20106, "DCO_E_UNKNOWN_ID");
    RET(x_close(), 0);
    raw_free(&o);
}

static void scenario_limits(void)
{
    const int unserved = g_p[0];
    struct raw_out o;
    raw_init(&o, RAW_MAX);
    unsigned char *p = malloc(4000);
    fill_pattern(p, 4000, 1);

    /* Connect (the hub's WELCOME brings its limits). */
    ORA(x_call(unserved, T, &o), 20103, "DCO_E_NO_ROUTE");
    /* A body over the hub's frame limit (4096 bytes): ORA-20107, nothing appended. */
    RET(x_write(p, 4000, IND_NOTNULL), 0);
    ORA(x_write(p, 200, IND_NOTNULL), 20107, "DCO_E_TOO_LARGE");
    LAST_ERROR("DCO_E_TOO_LARGE:");
    char line[201];
    memset(line, 'l', 200);
    line[200] = '\0';
    ORA(x_line(line, IND_NOTNULL), 20107, "DCO_E_TOO_LARGE");
    /* Over the quota of 2 unread requests: ORA-20105, room again once one is read. */
    int a = OK(x_send(unserved, 0));
    int b = OK(x_send(unserved, 0));
    EXPECT(b == a + 1);
    ORA(x_send(unserved, 0), 20105, "DCO_E_BUSY");
    LAST_ERROR("DCO_E_BUSY:");
    ORA(x_send(unserved, BUFFERED), 20105, "DCO_E_BUSY");
    ORA(x_read(a, T, &o), 20103, "DCO_E_NO_ROUTE");
    RET(x_send(unserved, 0), b + 1);
    RET(x_cancel(b), 0);
    ORA(x_read(b + 1, T, &o), 20103, "DCO_E_NO_ROUTE");
    RET(x_close(), 0);
    free(p);
    raw_free(&o);
}

static void scenario_bad_hub(void)
{
    const int echo = g_p[0];
    struct raw_out o;
    raw_init(&o, RAW_MAX);
    /* Every call that needs the session raises ORA-20101, none crashes. */
    ORA(x_write("x", 1, IND_NOTNULL), 20101, "DCO_E_INVALID");
    LAST_ERROR("DCO_E_INVALID:");
    EXPECTF(!EMULATOR_WITH_OCI || (g_last_error && strstr(g_last_error, "neither host:port")),
            "last_error \"%s\"", g_last_error ? g_last_error : "(null)");
    ORA(x_line("x", IND_NOTNULL), 20101, "DCO_E_INVALID");
    ORA(x_send(echo, 0), 20101, "DCO_E_INVALID");
    ORA(x_flush(), 20101, "DCO_E_INVALID");
    ORA(x_call(echo, T, &o), 20101, "DCO_E_INVALID");
    ORA(x_read(1, T, &o), 20101, "DCO_E_INVALID");
    ORA(x_chunk(1, 0, &o), 20101, "DCO_E_INVALID");
    ORA(x_cancel(1), 20101, "DCO_E_INVALID");
    ORA(x_last_request_id(), 20101, "DCO_E_INVALID");
    RET(x_last_rcode(), 0);
    RET(x_close(), 0);
    raw_free(&o);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: extproc_emulator LIBDCO SCENARIO [PROXY...]\n");
        return 2;
    }
    const char *lib = argv[1];
    g_scenario = argv[2];
    for (int i = 3; i < argc && i - 3 < 4; i++) {
        char *end = NULL;
        long v = strtol(argv[i], &end, 10);
        if (end == argv[i] || *end != '\0') {
            fprintf(stderr, "extproc_emulator: '%s' is not a proxy id\n", argv[i]);
            return 2;
        }
        g_p[i - 3] = (int)v;
    }
    static const struct {
        const char *name;
        int proxies;
        void (*run)(void);
    } table[] = {
        {"probe", 0, scenario_probe},
        {"calls", 2, scenario_calls},
        {"app", 1, scenario_app},
        {"gate", 3, scenario_gate},
        {"close", 1, scenario_close},
        {"queue", 3, scenario_queue},
        {"service", 1, scenario_service},
        {"sessions", 1, NULL},
        {"not_connected", 1, scenario_not_connected},
        {"limits", 1, scenario_limits},
        {"bad_hub", 1, scenario_bad_hub},
    };
    size_t k = 0;
    while (k < sizeof table / sizeof table[0] && strcmp(table[k].name, g_scenario) != 0)
        k++;
    if (k == sizeof table / sizeof table[0] || argc - 3 != table[k].proxies) {
        fprintf(stderr, "extproc_emulator: unknown scenario or wrong number of proxies: %s\n",
                g_scenario);
        return 2;
    }
    if (table[k].run == NULL) {
        /* Each session loads the library in its own process, as each extproc agent does. */
        scenario_sessions(lib);
    } else {
        load_library(lib);
        table[k].run();
    }
    free(g_last_error);
    printf("extproc_emulator %s (%s): %d checks, %d failed\n", argv[2],
           EMULATOR_WITH_OCI ? "ociep* exported" : "no ociep* symbols", checks, failures);
    return failures ? 1 : 0;
}
