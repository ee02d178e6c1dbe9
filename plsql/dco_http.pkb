CREATE OR REPLACE PACKAGE BODY dco_http AS
  /*
   * dco_http over dco's specification only (dco.write, send_request, read_request, call,
   * last_error, last_rcode, last_request_id, close and the exceptions), so it runs on either
   * body.
   *
   * Requests: the message is built whole in a temporary BLOB (request line, headers, empty
   * line, body), then written into dco's request body in pieces of at most 32767 bytes (the
   * most a RAW holds, which is what dco.write takes) and sent with dco.send_request (request)
   * or dco.call (call). Everything is checked before the first byte is written, so an invalid
   * argument leaves nothing behind in dco's body.
   *
   * Replies: taken apart in place with DBMS_LOB (INSTR for each line end, SUBSTR of one line
   * at a time), so a reply of any size is read without holding it in a RAW; the status line
   * and headers may take at most 64 KiB, a line 8 KiB. What is not an HTTP response message
   * raises dco.protocol.
   *
   * An app_fail (a 4xx) comes without its reply BLOB: both bodies release the reply and pass
   * its text on in dco.last_error (and SQLERRM). That text is taken apart as a response, as
   * far as it goes, for last_response. The extproc body clears its last error with the next
   * call that succeeds, so dco.last_error is read before any other dco call there.
   *
   * A request left as dco's body by a failed send (g_left*): dco keeps the body of a send that
   * failed before the request was taken, so that it can be sent again; anything written after
   * it would be appended to it. The copy in g_left tells a retry of the same request (sent as
   * it is) from another one (refused). dco.last_request_id tells whether the request was taken
   * (it changes when one is) and whether the body has been sent since (by dco directly) or
   * dropped by dco.close.
   */

  c_chunk    CONSTANT PLS_INTEGER := 32767;   -- the most a RAW holds: dco.write's piece
  c_max_path CONSTANT PLS_INTEGER := 8192;    -- bytes of a request's path
  c_max_line CONSTANT PLS_INTEGER := 8192;    -- bytes of one line of a response's head
  c_max_head CONSTANT PLS_INTEGER := 65536;   -- bytes of a response's status line and headers
  c_utf8_id  CONSTANT PLS_INTEGER := 873;     -- NLS_CHARSET_ID('AL32UTF8')
  c_crlf     CONSTANT RAW(2) := HEXTORAW('0D0A');
  c_lf       CONSTANT RAW(1) := HEXTORAW('0A');
  c_cr       CONSTANT RAW(1) := HEXTORAW('0D');
  c_http     CONSTANT RAW(5) := HEXTORAW('485454502F');   -- 'HTTP/'
  -- The characters of an HTTP token (RFC 9110 5.6.2): method and header names. The 15 marks
  -- first; the ampersand as CHR(38), which SQL*Plus would take for a substitution variable.
  c_tchars   CONSTANT VARCHAR2(100) := '!#$%' || CHR(38) || '''*+-.^_`|~0123456789' ||
                                       'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  c_app_fail_prefix CONSTANT VARCHAR2(16) := 'DCO_E_APP_FAIL: ';

  -- dco's exceptions raised here, as ORA-(error_base - DCO_E_* code).
  e_invalid  CONSTANT PLS_INTEGER := -(dco.error_base + 1);    -- dco.invalid
  e_app_fail CONSTANT PLS_INTEGER := -(dco.error_base + 8);    -- dco.app_fail
  e_protocol CONSTANT PLS_INTEGER := -(dco.error_base + 12);   -- dco.protocol

  -- The response of the last read or call that raised app_fail (last_response).
  g_last       response_t;

  -- The request a failed send left as dco's body: g_left_set; a copy of it in g_left (NULL
  -- when only a part of it was written, or whether it was taken is not known); what it was
  -- ('POST /sms'); dco.last_request_id when it was left.
  g_left_set   BOOLEAN := FALSE;
  g_left       BLOB;
  g_left_what  VARCHAR2(300);
  g_left_after PLS_INTEGER;

  ----------------------------------------------------------------------------------------------
  -- Errors and text

  PROCEDURE invalid(msg IN VARCHAR2) IS
  BEGIN
    RAISE_APPLICATION_ERROR(e_invalid, SUBSTR('DCO_E_INVALID: dco_http: ' || msg, 1, 2000));
  END invalid;

  PROCEDURE protocol(msg IN VARCHAR2) IS
  BEGIN
    RAISE_APPLICATION_ERROR(e_protocol, SUBSTR('DCO_E_PROTOCOL: dco_http: ' || msg, 1, 2000));
  END protocol;

  -- s for a message: at most 100 characters, control characters as spaces.
  FUNCTION shown(s IN VARCHAR2) RETURN VARCHAR2 IS
  BEGIN
    IF LENGTH(s) > 100 THEN
      RETURN REGEXP_REPLACE(SUBSTR(s, 1, 100), '[[:cntrl:]]', ' ') || '...';
    END IF;
    RETURN REGEXP_REPLACE(s, '[[:cntrl:]]', ' ');
  END shown;

  -- Whether s is an HTTP token (not empty, tchars only). LTRIM with a set, not a regular
  -- expression, so that no NLS setting widens a range.
  FUNCTION is_token(s IN VARCHAR2) RETURN BOOLEAN IS
  BEGIN
    RETURN s IS NOT NULL AND LTRIM(s, c_tchars) IS NULL;
  END is_token;

  -- Whether s is 1 to n decimal digits.
  FUNCTION is_digits(s IN VARCHAR2, n IN PLS_INTEGER) RETURN BOOLEAN IS
  BEGIN
    RETURN s IS NOT NULL AND LENGTH(s) <= n AND LTRIM(s, '0123456789') IS NULL;
  END is_digits;

  -- Text as UTF-8 bytes. s of at most 10000 bytes gives at most 30000 (a character of the
  -- database character set takes at most three times its bytes in UTF-8): one RAW.
  FUNCTION utf8(s IN VARCHAR2) RETURN RAW IS
  BEGIN
    IF s IS NULL THEN
      RETURN NULL;
    END IF;
    RETURN UTL_I18N.STRING_TO_RAW(s, 'AL32UTF8');
  END utf8;

  -- UTF-8 bytes as text (bytes that are not UTF-8 become replacement characters).
  FUNCTION text_of(r IN RAW) RETURN VARCHAR2 IS
  BEGIN
    IF r IS NULL THEN
      RETURN NULL;
    END IF;
    RETURN UTL_I18N.RAW_TO_CHAR(r, 'AL32UTF8');
  END text_of;

  -- Frees b if it is a temporary LOB, and makes it NULL. A locator whose LOB was freed through
  -- a copy of it is only forgotten.
  PROCEDURE free_blob(b IN OUT NOCOPY BLOB) IS
  BEGIN
    IF b IS NOT NULL AND DBMS_LOB.ISTEMPORARY(b) = 1 THEN
      DBMS_LOB.FREETEMPORARY(b);
    END IF;
    b := NULL;
  EXCEPTION
    WHEN OTHERS THEN
      b := NULL;
  END free_blob;

  -- An empty response (status NULL) in r, freeing r's body.
  PROCEDURE clear_response(r IN OUT NOCOPY response_t) IS
  BEGIN
    free_blob(r.body);
    r.status := NULL;
    r.reason := NULL;
    r.headers := headers_t();
    r.complete := NULL;
  END clear_response;

  ----------------------------------------------------------------------------------------------
  -- Requests

  -- Checks a header: dco.invalid unless name is a token of at most 256 bytes and value has at
  -- most 4000 bytes, all ASCII (what the worker sends: HeaderValue::from_str), and no control
  -- character but tab. A character is ASCII when it is one byte in UTF-8.
  PROCEDURE check_header(name IN VARCHAR2, value IN VARCHAR2) IS
  BEGIN
    IF NOT is_token(name) THEN
      invalid('header name "' || shown(name) || '" is not a token (letters, digits and ' ||
              SUBSTR(c_tchars, 1, 15) || ')');
    ELSIF LENGTHB(name) > 256 THEN
      invalid('header name "' || shown(name) || '" is longer than 256 bytes');
    ELSIF LENGTHB(value) > 4000 THEN
      invalid('the value of header ' || name || ' is longer than 4000 bytes');
    ELSIF REGEXP_LIKE(REPLACE(value, CHR(9)), '[[:cntrl:]]') THEN
      invalid('the value of header ' || name || ' has a line break or another control ' ||
              'character');
    ELSIF value IS NOT NULL AND UTL_RAW.LENGTH(utf8(value)) <> LENGTH(value) THEN
      invalid('the value of header ' || name || ' has characters that are not ASCII (encode ' ||
              'them, as the service expects: percent-encoding, RFC 8187, base64)');
    END IF;
  END check_header;

  -- Checks what makes a request (dco.invalid): a proxy id, a method that is a token, a path
  -- without spaces or control characters, valid headers.
  PROCEDURE check_request(
    proxy_id IN PLS_INTEGER,
    method   IN VARCHAR2,
    path     IN VARCHAR2,
    headers  IN headers_t) IS
    i PLS_INTEGER;
  BEGIN
    IF proxy_id IS NULL OR proxy_id < 0 THEN
      invalid('the proxy id must be given and not negative');
    END IF;
    IF NOT is_token(method) OR LENGTH(method) > 64 THEN
      invalid('"' || shown(method) || '" is not an HTTP method (a token such as GET or POST)');
    END IF;
    IF path IS NULL THEN
      invalid('the path is NULL (want /resource?query, relative to the worker''s --base-url)');
    ELSIF REGEXP_LIKE(path, '[[:space:][:cntrl:]]') THEN
      invalid('the path "' || shown(path) || '" has spaces, line breaks or control ' ||
              'characters (percent-encode them: %20)');
    ELSIF LENGTHB(path) > c_max_path THEN
      invalid('the path is longer than ' || c_max_path || ' bytes');
    END IF;
    IF headers IS NOT NULL THEN
      i := headers.FIRST;
      WHILE i IS NOT NULL LOOP
        check_header(headers(i).name, headers(i).value);
        i := headers.NEXT(i);
      END LOOP;
    END IF;
  END check_request;

  -- Appends r to b.
  PROCEDURE put(b IN OUT NOCOPY BLOB, r IN RAW) IS
  BEGIN
    IF r IS NOT NULL THEN
      DBMS_LOB.WRITEAPPEND(b, UTL_RAW.LENGTH(r), r);
    END IF;
  END put;

  -- The head of a request message into msg (a new temporary BLOB): the request line, the
  -- headers given, then Content-Type: ctype and Accept: accept_type where not NULL and not
  -- given, and the empty line. The body is the caller's to append. Lines end in CRLF.
  PROCEDURE build_head(
    msg         IN OUT NOCOPY BLOB,
    method      IN VARCHAR2,
    path        IN VARCHAR2,
    headers     IN headers_t,
    ctype       IN VARCHAR2,
    accept_type IN VARCHAR2) IS
    i PLS_INTEGER;
  BEGIN
    DBMS_LOB.CREATETEMPORARY(msg, TRUE, DBMS_LOB.SESSION);
    put(msg, UTL_RAW.CONCAT(utf8(method || ' '), utf8(path), utf8(' HTTP/1.1'), c_crlf));
    IF headers IS NOT NULL THEN
      i := headers.FIRST;
      WHILE i IS NOT NULL LOOP
        put(msg, UTL_RAW.CONCAT(utf8(headers(i).name || ': ' || headers(i).value), c_crlf));
        i := headers.NEXT(i);
      END LOOP;
    END IF;
    IF ctype IS NOT NULL AND header(headers, 'Content-Type') IS NULL THEN
      put(msg, UTL_RAW.CONCAT(utf8('Content-Type: ' || ctype), c_crlf));
    END IF;
    IF accept_type IS NOT NULL AND header(headers, 'Accept') IS NULL THEN
      put(msg, UTL_RAW.CONCAT(utf8('Accept: ' || accept_type), c_crlf));
    END IF;
    put(msg, c_crlf);
  END build_head;

  -- Appends the bytes of body to msg.
  PROCEDURE append_blob(msg IN OUT NOCOPY BLOB, body IN BLOB) IS
  BEGIN
    IF body IS NOT NULL AND DBMS_LOB.GETLENGTH(body) > 0 THEN
      DBMS_LOB.APPEND(msg, body);
    END IF;
  END append_blob;

  -- Appends body to msg as UTF-8.
  PROCEDURE append_clob(msg IN OUT NOCOPY BLOB, body IN CLOB) IS
    dest INTEGER;
    src  INTEGER := 1;
    ctx  INTEGER := DBMS_LOB.DEFAULT_LANG_CTX;
    warn INTEGER;
  BEGIN
    IF body IS NOT NULL AND DBMS_LOB.GETLENGTH(body) > 0 THEN
      dest := DBMS_LOB.GETLENGTH(msg) + 1;
      DBMS_LOB.CONVERTTOBLOB(msg, body, DBMS_LOB.LOBMAXSIZE, dest, src, c_utf8_id, ctx, warn);
    END IF;
  END append_clob;

  -- Whether a text body is given (a CLOB that is not NULL and not empty).
  FUNCTION has_text(body IN CLOB) RETURN BOOLEAN IS
  BEGIN
    RETURN body IS NOT NULL AND DBMS_LOB.GETLENGTH(body) > 0;
  END has_text;

  PROCEDURE forget_left IS
  BEGIN
    free_blob(g_left);
    g_left_set := FALSE;
    g_left_what := NULL;
    g_left_after := NULL;
  END forget_left;

  -- A send failed and the request was not taken (or it is not known whether it was): msg is
  -- dco's body now; whole FALSE: only a part of it, or not known. id_before:
  -- dco.last_request_id before the send. Never raises: it runs in exception handlers, which
  -- re-raise the failure.
  PROCEDURE note_left(
    msg       IN BLOB,
    whole     IN BOOLEAN,
    id_before IN PLS_INTEGER,
    what      IN VARCHAR2) IS
  BEGIN
    forget_left;
    g_left_set := TRUE;
    g_left_after := id_before;
    g_left_what := SUBSTR(what, 1, 300);
    IF whole THEN
      DBMS_LOB.CREATETEMPORARY(g_left, TRUE, DBMS_LOB.SESSION);
      DBMS_LOB.COPY(g_left, msg, DBMS_LOB.GETLENGTH(msg));
    END IF;
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(g_left);
  END note_left;

  -- Makes msg dco's request body: writes it with dco.write in pieces of at most 32767 bytes,
  -- unless it is the request a failed send left there (then it is in place already). Raises
  -- dco.invalid if another request was left there. Returns dco.last_request_id as it is
  -- before the send, to tell afterwards whether the request was taken.
  FUNCTION put_message(msg IN BLOB, what IN VARCHAR2) RETURN PLS_INTEGER IS
    n      INTEGER := DBMS_LOB.GETLENGTH(msg);
    off    INTEGER := 1;
    id_before PLS_INTEGER := dco.last_request_id;
  BEGIN
    IF g_left_set THEN
      IF id_before <> NVL(g_left_after, -1) THEN
        -- Sent since (dco.send_request) or dropped (dco.close): dco's body is not it any more.
        forget_left;
      ELSIF g_left IS NOT NULL AND DBMS_LOB.GETLENGTH(g_left) = n
            AND DBMS_LOB.COMPARE(g_left, msg, n, 1, 1) = 0 THEN
        -- The same request again: it is dco's body already.
        forget_left;
        RETURN id_before;
      ELSE
        invalid('the request "' || g_left_what || '" of a send that failed is still the ' ||
                'body of the dco session (dco keeps it to be sent again), and this one would ' ||
                'be appended to it: send that request again, or drop it with ' ||
                'dco_http.discard_unsent (which closes the dco session)');
      END IF;
    END IF;
    WHILE off <= n LOOP
      BEGIN
        dco.write(DBMS_LOB.SUBSTR(msg, LEAST(c_chunk, n - off + 1), off));
      EXCEPTION
        WHEN OTHERS THEN
          IF off > 1 THEN
            note_left(msg, FALSE, id_before, what);   -- the pieces before are in dco's body
          END IF;
          RAISE;
      END;
      off := off + c_chunk;
    END LOOP;
    RETURN id_before;
  END put_message;

  -- Sends msg (a request message, freed here) with dco.send_request; returns the request id.
  FUNCTION send_message(
    proxy_id IN PLS_INTEGER,
    msg      IN OUT NOCOPY BLOB,
    what     IN VARCHAR2,
    buffered IN BOOLEAN) RETURN PLS_INTEGER IS
    id_before PLS_INTEGER;
    id     PLS_INTEGER;
  BEGIN
    id_before := put_message(msg, what);
    BEGIN
      id := dco.send_request(proxy_id, NVL(buffered, FALSE));
    EXCEPTION
      WHEN OTHERS THEN
        -- Both bodies keep the body when send_request fails: the request was not taken.
        note_left(msg, TRUE, id_before, what);
        RAISE;
    END;
    free_blob(msg);
    RETURN id;
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(msg);
      RAISE;
  END send_message;

  ----------------------------------------------------------------------------------------------
  -- Responses

  -- Takes the response message msg apart into r: status line, headers, body (a new temporary
  -- BLOB). strict: a message that is not an HTTP response, or whose body is not as long as its
  -- Content-Length says, raises dco.protocol. Not strict (a failed reply's text, which may be
  -- cut), nothing raises: r has what could be taken apart and r.complete is FALSE where it
  -- stopped short; without a status line r.status is NULL and the body the whole message,
  -- with headers that do not end the body is empty. The failure is handled here, where r is
  -- being filled, so that a partial r does not depend on NOCOPY being honoured.
  PROCEDURE parse_into(msg IN BLOB, r IN OUT NOCOPY response_t, strict IN BOOLEAN) IS
    total    INTEGER := NVL(DBMS_LOB.GETLENGTH(msg), 0);
    pos      INTEGER := 1;
    head     INTEGER := 0;
    line     VARCHAR2(32767);
    sp       PLS_INTEGER;
    c        PLS_INTEGER;
    name     VARCHAR2(32767);
    value    VARCHAR2(32767);
    cl       VARCHAR2(4000);
    body_len INTEGER;

    -- The line at pos as text, without its LF (and a CR before it); pos moves past it.
    FUNCTION next_line(what IN VARCHAR2) RETURN VARCHAR2 IS
      lf  INTEGER := 0;
      len INTEGER;
      b   RAW(32767);
    BEGIN
      IF pos <= total THEN
        lf := NVL(DBMS_LOB.INSTR(msg, c_lf, pos, 1), 0);
      END IF;
      IF lf = 0 AND what = 'headers' THEN
        protocol('the response''s headers do not end: no empty line after them');
      ELSIF lf = 0 THEN
        protocol('the reply ends in the middle of the ' || what || ' (no line end): not a ' ||
                 'whole HTTP response message');
      END IF;
      len := lf - pos;
      head := head + len + 1;
      IF len > c_max_line THEN
        protocol('a line of the response''s ' || what || ' is longer than ' || c_max_line ||
                 ' bytes');
      ELSIF head > c_max_head THEN
        protocol('the response''s status line and headers are longer than ' || c_max_head ||
                 ' bytes');
      END IF;
      IF len > 0 THEN
        b := DBMS_LOB.SUBSTR(msg, len, pos);
        IF UTL_RAW.SUBSTR(b, len, 1) = c_cr THEN
          b := CASE WHEN len = 1 THEN NULL ELSE UTL_RAW.SUBSTR(b, 1, len - 1) END;
        END IF;
      END IF;
      pos := lf + 1;
      RETURN text_of(b);
    END next_line;
  BEGIN
    clear_response(r);
    BEGIN
      IF total = 0 THEN
        protocol('the reply is empty, not an HTTP response message');
      ELSIF NVL(DBMS_LOB.SUBSTR(msg, 5, 1), HEXTORAW('00')) <> c_http THEN
        protocol('the reply is not an HTTP response: it starts with "' ||
                 shown(text_of(DBMS_LOB.SUBSTR(msg, LEAST(total, 100), 1))) || '"');
      END IF;

      -- The status line: HTTP/1.1 404 Not Found (the reason may be empty).
      line := next_line('status line');
      sp := INSTR(line, ' ');
      IF line IS NULL OR SUBSTR(line, 1, 5) <> 'HTTP/' OR sp < 7
         OR NOT is_digits(SUBSTR(line, sp + 1, 3), 3) OR LENGTH(SUBSTR(line, sp + 1, 3)) <> 3
         OR NVL(SUBSTR(line, sp + 4, 1), ' ') <> ' ' THEN
        protocol('the reply is not an HTTP response: it starts with "' || shown(line) ||
                 '" (want HTTP/1.1 <status> <reason>)');
      END IF;
      r.status := TO_NUMBER(SUBSTR(line, sp + 1, 3));
      r.reason := SUBSTRB(TRIM(REGEXP_REPLACE(SUBSTR(line, sp + 5), '[[:cntrl:]]', ' ')), 1, 256);

      -- The headers, up to the empty line.
      LOOP
        line := next_line('headers');
        EXIT WHEN line IS NULL;
        IF SUBSTR(line, 1, 1) IN (' ', CHR(9)) THEN
          protocol('a folded header line ("' || shown(line) || '") in the response');
        END IF;
        c := INSTR(line, ':');
        IF c < 2 THEN
          protocol('malformed header line "' || shown(line) || '" in the response (want ' ||
                   'name: value)');
        END IF;
        name := SUBSTR(line, 1, c - 1);
        IF NOT is_token(name) OR LENGTHB(name) > 256 THEN
          protocol('"' || shown(name) || '" is not a header name');
        END IF;
        value := RTRIM(LTRIM(SUBSTR(line, c + 1), ' ' || CHR(9)), ' ' || CHR(9));
        IF LENGTHB(value) > 4000 THEN
          protocol('the value of response header ' || name || ' is ' || LENGTHB(value) ||
                   ' bytes, over the 4000 of a header_t');
        END IF;
        r.headers.EXTEND;
        r.headers(r.headers.LAST).name := name;
        r.headers(r.headers.LAST).value := value;
      END LOOP;

      -- The body is the rest: as long as Content-Length says, if it says.
      body_len := total - pos + 1;
      r.complete := TRUE;
      cl := header(r.headers, 'Content-Length');
      IF cl IS NOT NULL AND (NOT is_digits(cl, 15) OR TO_NUMBER(cl) <> body_len) THEN
        IF strict THEN
          protocol('the response''s body is ' || body_len || ' bytes, its Content-Length ' ||
                   'says "' || shown(cl) || '"');
        END IF;
        r.complete := FALSE;
      END IF;
    EXCEPTION
      WHEN OTHERS THEN
        IF strict THEN
          RAISE;
        END IF;
        -- Cut short: keep what was read; the body is the whole message when not even the
        -- status line was there, else none.
        r.complete := FALSE;
        IF r.status IS NULL THEN
          r.headers := headers_t();
          pos := 1;
        ELSE
          pos := total + 1;
        END IF;
        body_len := total - pos + 1;
    END;
    DBMS_LOB.CREATETEMPORARY(r.body, TRUE, DBMS_LOB.SESSION);
    IF body_len > 0 THEN
      DBMS_LOB.COPY(r.body, msg, body_len, 1, pos);
    END IF;
  END parse_into;

  -- The response of a reply read as a success (the reply is freed).
  FUNCTION parsed(reply IN OUT NOCOPY BLOB) RETURN response_t IS
    r response_t;
  BEGIN
    parse_into(reply, r, TRUE);
    free_blob(reply);
    RETURN r;
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(reply);
      RAISE;
  END parsed;

  -- The text of a failed reply as a response in r (parse_into, not strict, of the text in
  -- UTF-8); without a status line, status is rcode and the body the whole text. Returns
  -- whether the text began as an HTTP response.
  FUNCTION failure_response(
    text  IN VARCHAR2,
    rcode IN PLS_INTEGER,
    r     IN OUT NOCOPY response_t) RETURN BOOLEAN IS
    msg BLOB;
    i   PLS_INTEGER := 1;
    ok  BOOLEAN;
  BEGIN
    DBMS_LOB.CREATETEMPORARY(msg, TRUE, DBMS_LOB.CALL);
    -- 8000 characters at a time: at most 32000 bytes in UTF-8, one RAW.
    WHILE i <= NVL(LENGTH(text), 0) LOOP
      put(msg, utf8(SUBSTR(text, i, 8000)));
      i := i + 8000;
    END LOOP;
    parse_into(msg, r, FALSE);
    ok := r.status IS NOT NULL;
    IF NOT ok THEN
      r.status := rcode;
    END IF;
    free_blob(msg);
    RETURN ok;
  END failure_response;

  -- The first n bytes of r's body as one line of text, for a message.
  FUNCTION body_start(r IN response_t, n IN PLS_INTEGER) RETURN VARCHAR2 IS
  BEGIN
    IF r.body IS NULL OR DBMS_LOB.GETLENGTH(r.body) = 0 THEN
      RETURN NULL;
    END IF;
    RETURN TRIM(REGEXP_REPLACE(text_of(DBMS_LOB.SUBSTR(r.body, n, 1)), '[[:cntrl:]]+', ' '));
  END body_start;

  -- Called from a handler of dco.app_fail (err: its SQLERRM): keeps the response the failure
  -- carried as g_last, then raises app_fail again in HTTP's words ("DCO_E_APP_FAIL: HTTP 404
  -- Not Found: <the start of the body>"), or with the same words when it was not an HTTP
  -- response. dco.last_rcode stays the status.
  PROCEDURE raise_app_fail(err IN VARCHAR2) IS
    text    VARCHAR2(32767);
    rcode   PLS_INTEGER;
    is_http BOOLEAN;
    words   VARCHAR2(4000);
    why     VARCHAR2(4000);
  BEGIN
    -- dco.last_error first: the extproc body clears it with the next dco call.
    BEGIN
      text := dco.last_error;
    EXCEPTION
      WHEN OTHERS THEN
        text := NULL;
    END;
    BEGIN
      rcode := dco.last_rcode;
    EXCEPTION
      WHEN OTHERS THEN
        rcode := NULL;
    END;
    words := REGEXP_REPLACE(err, '^ORA-[0-9]+: ', '');
    IF text IS NULL THEN
      text := words;
    END IF;
    IF SUBSTR(text, 1, LENGTH(c_app_fail_prefix)) = c_app_fail_prefix THEN
      text := SUBSTR(text, LENGTH(c_app_fail_prefix) + 1);
    END IF;
    clear_response(g_last);
    is_http := failure_response(text, rcode, g_last);
    IF is_http THEN
      why := header(g_last, 'x-dco-error');
      words := c_app_fail_prefix || 'HTTP ' || g_last.status ||
               CASE WHEN g_last.reason IS NOT NULL THEN ' ' || g_last.reason END ||
               CASE WHEN why IS NOT NULL THEN ' (' || shown(why) || ')' END ||
               CASE WHEN body_start(g_last, 300) IS NOT NULL
                    THEN ': ' || body_start(g_last, 300) END;
    END IF;
    RAISE_APPLICATION_ERROR(e_app_fail, SUBSTR(words, 1, 2000));
  END raise_app_fail;

  -- Sends msg (a request message, freed here) with dco.call and returns its response.
  FUNCTION call_message(
    proxy_id         IN PLS_INTEGER,
    msg              IN OUT NOCOPY BLOB,
    what             IN VARCHAR2,
    timeout_ms       IN PLS_INTEGER,
    queue_on_timeout IN BOOLEAN) RETURN response_t IS
    reply  BLOB;
    id_before PLS_INTEGER;
    id_after  PLS_INTEGER;
  BEGIN
    clear_response(g_last);
    id_before := put_message(msg, what);
    BEGIN
      dco.call(proxy_id, reply, timeout_ms, NVL(queue_on_timeout, FALSE));
    EXCEPTION
      WHEN dco.app_fail THEN
        free_blob(msg);
        raise_app_fail(SQLERRM);
      WHEN OTHERS THEN
        -- Failures that may come before dco takes the request (which then keeps the body):
        -- taken or not, dco.last_request_id tells.
        IF SQLCODE IN (-(dco.error_base + 1), -(dco.error_base + 4), -(dco.error_base + 5),
                       -(dco.error_base + 7), -(dco.error_base + 11), -(dco.error_base + 13)) THEN
          BEGIN
            id_after := dco.last_request_id;
          EXCEPTION
            WHEN OTHERS THEN
              id_after := NULL;
          END;
          IF id_after IS NULL OR id_after = id_before THEN
            note_left(msg, id_after IS NOT NULL, id_before, what);
          END IF;
        END IF;
        free_blob(msg);
        RAISE;
    END;
    free_blob(msg);
    RETURN parsed(reply);
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(msg);
      free_blob(reply);
      RAISE;
  END call_message;

  ----------------------------------------------------------------------------------------------
  -- The API

  FUNCTION request(
    proxy_id IN PLS_INTEGER,
    method   IN VARCHAR2,
    path     IN VARCHAR2,
    headers  IN headers_t DEFAULT headers_t(),
    body     IN BLOB DEFAULT NULL,
    buffered IN BOOLEAN DEFAULT FALSE) RETURN PLS_INTEGER IS
    msg BLOB;
  BEGIN
    check_request(proxy_id, method, path, headers);
    build_head(msg, method, path, headers, NULL, NULL);
    append_blob(msg, body);
    RETURN send_message(proxy_id, msg, method || ' ' || path, buffered);
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(msg);
      RAISE;
  END request;

  FUNCTION request(
    proxy_id IN PLS_INTEGER,
    method   IN VARCHAR2,
    path     IN VARCHAR2,
    headers  IN headers_t,
    body     IN CLOB,
    buffered IN BOOLEAN DEFAULT FALSE) RETURN PLS_INTEGER IS
    msg BLOB;
  BEGIN
    check_request(proxy_id, method, path, headers);
    build_head(msg, method, path, headers,
               CASE WHEN has_text(body) THEN 'text/plain; charset=utf-8' END, NULL);
    append_clob(msg, body);
    RETURN send_message(proxy_id, msg, method || ' ' || path, buffered);
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(msg);
      RAISE;
  END request;

  FUNCTION request_json(
    proxy_id IN PLS_INTEGER,
    method   IN VARCHAR2,
    path     IN VARCHAR2,
    body     IN CLOB DEFAULT NULL,
    headers  IN headers_t DEFAULT headers_t(),
    buffered IN BOOLEAN DEFAULT FALSE) RETURN PLS_INTEGER IS
    msg BLOB;
  BEGIN
    check_request(proxy_id, method, path, headers);
    build_head(msg, method, path, headers,
               CASE WHEN has_text(body) THEN 'application/json' END, 'application/json');
    append_clob(msg, body);
    RETURN send_message(proxy_id, msg, method || ' ' || path, buffered);
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(msg);
      RAISE;
  END request_json;

  FUNCTION read(
    req_id     IN PLS_INTEGER,
    timeout_ms IN PLS_INTEGER DEFAULT default_timeout_ms) RETURN response_t IS
    reply BLOB;
  BEGIN
    clear_response(g_last);
    BEGIN
      dco.read_request(req_id, reply, timeout_ms);
    EXCEPTION
      WHEN dco.app_fail THEN
        raise_app_fail(SQLERRM);
    END;
    RETURN parsed(reply);
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(reply);
      RAISE;
  END read;

  FUNCTION call(
    proxy_id         IN PLS_INTEGER,
    method           IN VARCHAR2,
    path             IN VARCHAR2,
    headers          IN headers_t DEFAULT headers_t(),
    body             IN BLOB DEFAULT NULL,
    timeout_ms       IN PLS_INTEGER DEFAULT default_timeout_ms,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) RETURN response_t IS
    msg BLOB;
  BEGIN
    check_request(proxy_id, method, path, headers);
    build_head(msg, method, path, headers, NULL, NULL);
    append_blob(msg, body);
    RETURN call_message(proxy_id, msg, method || ' ' || path, timeout_ms, queue_on_timeout);
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(msg);
      RAISE;
  END call;

  FUNCTION call(
    proxy_id         IN PLS_INTEGER,
    method           IN VARCHAR2,
    path             IN VARCHAR2,
    headers          IN headers_t,
    body             IN CLOB,
    timeout_ms       IN PLS_INTEGER DEFAULT default_timeout_ms,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) RETURN response_t IS
    msg BLOB;
  BEGIN
    check_request(proxy_id, method, path, headers);
    build_head(msg, method, path, headers,
               CASE WHEN has_text(body) THEN 'text/plain; charset=utf-8' END, NULL);
    append_clob(msg, body);
    RETURN call_message(proxy_id, msg, method || ' ' || path, timeout_ms, queue_on_timeout);
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(msg);
      RAISE;
  END call;

  FUNCTION call_json(
    proxy_id         IN PLS_INTEGER,
    method           IN VARCHAR2,
    path             IN VARCHAR2,
    body             IN CLOB DEFAULT NULL,
    headers          IN headers_t DEFAULT headers_t(),
    timeout_ms       IN PLS_INTEGER DEFAULT default_timeout_ms,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) RETURN response_t IS
    msg BLOB;
  BEGIN
    check_request(proxy_id, method, path, headers);
    build_head(msg, method, path, headers,
               CASE WHEN has_text(body) THEN 'application/json' END, 'application/json');
    append_clob(msg, body);
    RETURN call_message(proxy_id, msg, method || ' ' || path, timeout_ms, queue_on_timeout);
  EXCEPTION
    WHEN OTHERS THEN
      free_blob(msg);
      RAISE;
  END call_json;

  FUNCTION last_response RETURN response_t IS
  BEGIN
    RETURN g_last;
  END last_response;

  FUNCTION header(r IN response_t, name IN VARCHAR2) RETURN VARCHAR2 IS
  BEGIN
    RETURN header(r.headers, name);
  END header;

  FUNCTION header(h IN headers_t, name IN VARCHAR2) RETURN VARCHAR2 IS
    i PLS_INTEGER;
  BEGIN
    IF h IS NULL OR name IS NULL THEN
      RETURN NULL;
    END IF;
    i := h.FIRST;
    WHILE i IS NOT NULL LOOP
      IF LOWER(h(i).name) = LOWER(name) THEN
        RETURN h(i).value;
      END IF;
      i := h.NEXT(i);
    END LOOP;
    RETURN NULL;
  END header;

  FUNCTION body_text(r IN response_t) RETURN CLOB IS
    c    CLOB;
    dest INTEGER := 1;
    src  INTEGER := 1;
    ctx  INTEGER := DBMS_LOB.DEFAULT_LANG_CTX;
    warn INTEGER;
  BEGIN
    IF r.body IS NULL THEN
      RETURN NULL;
    END IF;
    DBMS_LOB.CREATETEMPORARY(c, TRUE, DBMS_LOB.SESSION);
    IF DBMS_LOB.GETLENGTH(r.body) > 0 THEN
      DBMS_LOB.CONVERTTOCLOB(c, r.body, DBMS_LOB.LOBMAXSIZE, dest, src, c_utf8_id, ctx, warn);
    END IF;
    RETURN c;
  END body_text;

  PROCEDURE add_header(h IN OUT NOCOPY headers_t, name IN VARCHAR2, value IN VARCHAR2) IS
  BEGIN
    check_header(name, value);
    IF h IS NULL THEN
      h := headers_t();
    END IF;
    h.EXTEND;
    h(h.LAST).name := name;
    h(h.LAST).value := value;
  END add_header;

  PROCEDURE free_response(r IN OUT NOCOPY response_t) IS
  BEGIN
    free_blob(r.body);
  END free_response;

  PROCEDURE discard_unsent IS
  BEGIN
    IF g_left_set THEN
      forget_left;
      dco.close;
    END IF;
  END discard_unsent;

BEGIN
  g_last.headers := headers_t();
END dco_http;
/
