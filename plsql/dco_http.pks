CREATE OR REPLACE PACKAGE dco_http AUTHID DEFINER AS
  /*
   * dco_http: calls HTTP services (REST APIs) from PL/SQL through a dco hub and its HTTP
   * worker. It is built on package dco and uses nothing but dco's specification, so it works
   * over either body (extproc or UTL_TCP).
   *
   * The worker serves one proxy id and calls one service:
   *
   *   dco worker http --proxy 30 --base-url https://sms.example.com/v1
   *
   * A request to that proxy is an HTTP/1.1 request message (request line, headers, an empty
   * line, the body) with a path relative to the base URL; its reply is the HTTP/1.1 response
   * message, and the reply's rcode (dco.last_rcode) the HTTP status. dco_http writes the one
   * and takes the other apart:
   *
   *   r := dco_http.call_json(30, 'POST', '/sms', '{"to":"+15550100","text":"hello"}');
   *   DBMS_OUTPUT.PUT_LINE(r.status || ' ' || dco_http.header(r, 'Location'));
   *
   *   id := dco_http.request(30, 'GET', '/sms/17');   -- asynchronous: the request id
   *   r  := dco_http.read(id, 5000);                  -- its response, waiting up to 5 s
   *
   * Outcomes, as dco's exceptions:
   *   2xx, 3xx  the response is returned (redirects are not followed: a 3xx is the answer).
   *   4xx       dco.app_fail (ORA-20108), dco.last_rcode = the status, SQLERRM "DCO_E_APP_FAIL:
   *             HTTP 404 Not Found: <the start of the body>"; last_response gives the response
   *             in the handler (see last_response for how much of its body there is).
   *   5xx, 408, 429, connection errors, no answer in time: the worker asks the hub to try
   *             again later and the hub retries under the proxy's policy; after the last
   *             attempt dco.system (ORA-20109), at the deadline (the call's timeout) dco.timeout
   *             (ORA-20102).
   *   A request the worker will not send is app_fail too, with a response the worker made and
   *   a header x-dco-error naming why: 400 malformed-request (the message did not parse), 403
   *   host-not-allowed (an absolute URL to a host not on its --allow-host list); a response
   *   over the worker's --max-response is 502 response-too-large.
   *   Arguments that cannot make a valid request: dco.invalid (ORA-20101), nothing sent.
   *   A reply that is not an HTTP response message: dco.protocol (ORA-20112).
   *   Everything else as dco raises it (no_route, not_connected, busy, queued, ...).
   *
   * Text (method, path, header names and values, a CLOB body) is sent as UTF-8 (AL32UTF8)
   * whatever the database character set; a BLOB body is sent as it is. Response headers and
   * body_text are read as UTF-8. Lines of the request end in CRLF.
   *
   * The worker sets Host, Content-Length, Transfer-Encoding and Connection itself (given ones
   * are ignored), and may add headers of its own configuration (--header, --bearer-token, ...)
   * unless the request sets them.
   *
   * dco_http builds each request in dco's request body (dco.write) and sends it at once, so
   * do not interleave it with a body being built by dco.write or dco.line. A send that fails
   * before dco takes the request (not_connected, busy, ...) leaves the request as dco's body:
   * dco keeps a body for a retry. dco_http remembers it: the same request sent again goes as
   * it is; a different one raises dco.invalid (it would be appended to the one left) until
   * the request left is sent, or dropped with discard_unsent.
   */

  -- A header: name and value (without the CRLF). Names compare case-insensitively.
  TYPE header_t IS RECORD (
    name  VARCHAR2(256),
    value VARCHAR2(4000));

  -- Headers in order. A nested table: headers_t() is empty, and add_header appends (it also
  -- starts a NULL one). Not a SQL type: for PL/SQL callers.
  TYPE headers_t IS TABLE OF header_t;

  -- An HTTP response.
  --   status    the status code (200, 404, ...).
  --   reason    the reason phrase of the status line (may be NULL).
  --   headers   the response headers in order; names lower-case as the worker writes them.
  --   body      the body: a temporary BLOB (empty, never NULL, for a response without one);
  --             free it with free_response when done with a large one.
  --   complete  whether body is the whole body. Always TRUE for a response returned by read or
  --             call; FALSE for a last_response whose body the dco body cut (see last_response).
  TYPE response_t IS RECORD (
    status   PLS_INTEGER,
    reason   VARCHAR2(256),
    headers  headers_t,
    body     BLOB,
    complete BOOLEAN);

  -- The timeout of read and call (ms) when none is given: the HTTP worker's own default
  -- time limit for a request without a deadline.
  default_timeout_ms CONSTANT PLS_INTEGER := 30000;

  -- Sends the request METHOD path to the HTTP worker serving proxy_id and returns its request
  -- id at once, for read (or dco.cancel). path is relative to the worker's --base-url and may
  -- carry a query string ('/sms?dry_run=1'); it must be percent-encoded (no spaces, no line
  -- breaks). The body goes as it is (NULL or empty: none). With buffered => TRUE the request
  -- only joins dco's batch, sent by dco.flush (or the first read that needs it). The request
  -- carries no deadline: the worker gives each attempt its own time limit (--timeout-ms, 30 s
  -- by default). Raises dco.invalid for a bad method, path or header, and what
  -- dco.send_request raises.
  FUNCTION request(
    proxy_id IN PLS_INTEGER,
    method   IN VARCHAR2,
    path     IN VARCHAR2,
    headers  IN headers_t DEFAULT headers_t(),
    body     IN BLOB DEFAULT NULL,
    buffered IN BOOLEAN DEFAULT FALSE) RETURN PLS_INTEGER;

  -- The same with a text body, sent as UTF-8, with Content-Type: text/plain; charset=utf-8
  -- unless headers has a Content-Type (or the body is empty). body has no default here, so a
  -- request without a body is the BLOB form; a NULL literal for body is ambiguous between the
  -- two (PLS-00307): leave it out.
  FUNCTION request(
    proxy_id IN PLS_INTEGER,
    method   IN VARCHAR2,
    path     IN VARCHAR2,
    headers  IN headers_t,
    body     IN CLOB,
    buffered IN BOOLEAN DEFAULT FALSE) RETURN PLS_INTEGER;

  -- request for a JSON API: body (a JSON document, sent as UTF-8; NULL: none) with
  -- Content-Type: application/json, and Accept: application/json; either only where headers
  -- does not have it.
  FUNCTION request_json(
    proxy_id IN PLS_INTEGER,
    method   IN VARCHAR2,
    path     IN VARCHAR2,
    body     IN CLOB DEFAULT NULL,
    headers  IN headers_t DEFAULT headers_t(),
    buffered IN BOOLEAN DEFAULT FALSE) RETURN PLS_INTEGER;

  -- Waits up to timeout_ms (NULL: without limit, 0: only looks) for the response of req_id and
  -- returns it. Raises dco.app_fail for a 4xx (last_response has it), dco.protocol for a reply
  -- that is not an HTTP response, and what dco.read_request raises (timeout leaves the request
  -- outstanding: read it again later; system after the hub's last attempt; ...).
  FUNCTION read(
    req_id     IN PLS_INTEGER,
    timeout_ms IN PLS_INTEGER DEFAULT default_timeout_ms) RETURN response_t;

  -- request and read in one: sends the request now and waits up to timeout_ms (NULL: without
  -- limit) for its response, with dco.call: the timeout also goes to the hub as the request's
  -- deadline, so the worker gets the time left and the hub stops retrying at it.
  -- queue_on_timeout => FALSE: on timeout the request is given up and dco.timeout raised.
  -- queue_on_timeout => TRUE: on timeout dco.queued is raised and the request goes on; read
  -- its response later with read(dco.last_request_id, ...). Outcomes as read.
  FUNCTION call(
    proxy_id         IN PLS_INTEGER,
    method           IN VARCHAR2,
    path             IN VARCHAR2,
    headers          IN headers_t DEFAULT headers_t(),
    body             IN BLOB DEFAULT NULL,
    timeout_ms       IN PLS_INTEGER DEFAULT default_timeout_ms,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) RETURN response_t;

  -- The same with a text body, as request's text form.
  FUNCTION call(
    proxy_id         IN PLS_INTEGER,
    method           IN VARCHAR2,
    path             IN VARCHAR2,
    headers          IN headers_t,
    body             IN CLOB,
    timeout_ms       IN PLS_INTEGER DEFAULT default_timeout_ms,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) RETURN response_t;

  -- call for a JSON API, with the headers of request_json.
  FUNCTION call_json(
    proxy_id         IN PLS_INTEGER,
    method           IN VARCHAR2,
    path             IN VARCHAR2,
    body             IN CLOB DEFAULT NULL,
    headers          IN headers_t DEFAULT headers_t(),
    timeout_ms       IN PLS_INTEGER DEFAULT default_timeout_ms,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) RETURN response_t;

  -- The response that the last read or call of this session failed with: after dco.app_fail
  -- (a 4xx), the HTTP response it carried; else (a success, another failure, or none yet) a
  -- response with status NULL. The dco bodies pass a failed reply on as text only (in
  -- dco.last_error), so its body is that text again in UTF-8 and may be cut: the UTL_TCP body
  -- keeps its first 1000 bytes, the extproc body 32767 bytes (and a binary body does not
  -- survive the trip). complete says whether the body is whole (it is as long as the
  -- response's Content-Length). When the text is not an HTTP response (a worker of another
  -- kind), status is dco.last_rcode, headers are empty and body is the text.
  FUNCTION last_response RETURN response_t;

  -- The value of the first header called name (case-insensitive), or NULL.
  FUNCTION header(r IN response_t, name IN VARCHAR2) RETURN VARCHAR2;
  FUNCTION header(h IN headers_t, name IN VARCHAR2) RETURN VARCHAR2;

  -- The body as text, decoded from UTF-8: a temporary CLOB (NULL when body is NULL).
  FUNCTION body_text(r IN response_t) RETURN CLOB;

  -- Appends the header name: value to h (made an empty list first when NULL). name must be a
  -- token (letters, digits and the marks RFC 9110 allows in one, such as - _ . !; at most 256
  -- bytes), value (at most 4000 bytes) ASCII, without line breaks or other control characters
  -- but tab: else dco.invalid. request and call check their headers the same way.
  PROCEDURE add_header(h IN OUT NOCOPY headers_t, name IN VARCHAR2, value IN VARCHAR2);

  -- Frees the temporary BLOB of r's body (r.body is NULL afterwards).
  PROCEDURE free_response(r IN OUT NOCOPY response_t);

  -- Drops the request that a failed send left as dco's body (see above) by ending the dco
  -- session: dco.close, which also drops the session's outstanding requests. Does nothing
  -- when no request was left.
  PROCEDURE discard_unsent;
END dco_http;
/
