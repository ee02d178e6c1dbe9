CREATE OR REPLACE PACKAGE BODY dco AS
  /*
   * dco over extproc: every call goes to libdco.so (the library object dco_lib, created by
   * install_extproc.sql) through the call specifications below. The library keeps this
   * database session's hub session in the extproc agent process between calls, connects to the
   * hubs listed in DCO_HUB of the agent's environment (extproc.ora), and raises failures as
   * ORA-201nn itself (OCIExtProcRaiseExcpWithMsg); the checks of negative results here only
   * matter where it could not.
   *
   * Each call specification matches the C prototype of its dco_ext_* function in
   * include/dco.h parameter by parameter (tests/plsql.rs checks it):
   *   CONTEXT           -> OCIExtProcContext *
   *   x RAW             -> const uint8_t * (IN), uint8_t * (IN OUT)
   *   x LENGTH INT      -> int (IN), int * (IN OUT)
   *   x MAXLEN INT      -> int * (IN OUT)
   *   x INDICATOR SHORT -> short (IN), short * (IN OUT)
   *   x INT, x STRING   -> int, const char *
   *   RETURN INT        -> int result; RETURN INDICATOR SHORT + RETURN STRING -> char * result
   *                        and a short * parameter.
   * RAW values are at most 32767 bytes: longer replies come in chunks (ext_read_chunk).
   */

  -- dco.h: int dco_ext_write(OCIExtProcContext *ctx, const uint8_t *data, int data_len,
  --                          short data_ind);
  FUNCTION ext_write(data IN RAW) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_write" WITH CONTEXT
    PARAMETERS (CONTEXT, data RAW, data LENGTH INT, data INDICATOR SHORT, RETURN INT);

  -- dco.h: int dco_ext_line(OCIExtProcContext *ctx, const char *text, short text_ind);
  FUNCTION ext_line(text IN VARCHAR2) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_line" WITH CONTEXT
    PARAMETERS (CONTEXT, text STRING, text INDICATOR SHORT, RETURN INT);

  -- dco.h: int dco_ext_send_request(OCIExtProcContext *ctx, int proxy_id, int flags);
  FUNCTION ext_send_request(proxy_id IN PLS_INTEGER, flags IN PLS_INTEGER) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_send_request" WITH CONTEXT
    PARAMETERS (CONTEXT, proxy_id INT, flags INT, RETURN INT);

  -- dco.h: int dco_ext_send_request_to(OCIExtProcContext *ctx, const char *service,
  --                                     short service_ind, int flags);
  FUNCTION ext_send_request_to(service IN VARCHAR2, flags IN PLS_INTEGER) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_send_request_to" WITH CONTEXT
    PARAMETERS (CONTEXT, service STRING, service INDICATOR SHORT, flags INT, RETURN INT);

  -- dco.h: int dco_ext_flush(OCIExtProcContext *ctx);
  FUNCTION ext_flush RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_flush" WITH CONTEXT
    PARAMETERS (CONTEXT, RETURN INT);

  -- dco.h: int dco_ext_read_request(OCIExtProcContext *ctx, int request_id, int timeout_ms,
  --                                 uint8_t *buf, int *buf_len, int *buf_maxlen,
  --                                 short *buf_ind);
  FUNCTION ext_read_request(
    request_id IN PLS_INTEGER,
    timeout_ms IN PLS_INTEGER,
    buf        IN OUT RAW) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_read_request" WITH CONTEXT
    PARAMETERS (CONTEXT, request_id INT, timeout_ms INT,
                buf RAW, buf LENGTH INT, buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT);

  -- dco.h: int dco_ext_read_chunk(OCIExtProcContext *ctx, int request_id, int offset,
  --                               uint8_t *buf, int *buf_len, int *buf_maxlen,
  --                               short *buf_ind);
  FUNCTION ext_read_chunk(
    request_id IN PLS_INTEGER,
    from_byte  IN PLS_INTEGER,
    buf        IN OUT RAW) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_read_chunk" WITH CONTEXT
    PARAMETERS (CONTEXT, request_id INT, from_byte INT,
                buf RAW, buf LENGTH INT, buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT);

  -- dco.h: int dco_ext_call_sync(OCIExtProcContext *ctx, int proxy_id, int timeout_ms,
  --                              uint8_t *buf, int *buf_len, int *buf_maxlen, short *buf_ind);
  FUNCTION ext_call_sync(
    proxy_id   IN PLS_INTEGER,
    timeout_ms IN PLS_INTEGER,
    buf        IN OUT RAW) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_call_sync" WITH CONTEXT
    PARAMETERS (CONTEXT, proxy_id INT, timeout_ms INT,
                buf RAW, buf LENGTH INT, buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT);

  -- dco.h: int dco_ext_call(OCIExtProcContext *ctx, int proxy_id, int timeout_ms,
  --                         int queue_on_timeout, uint8_t *buf, int *buf_len,
  --                         int *buf_maxlen, short *buf_ind);
  FUNCTION ext_call(
    proxy_id         IN PLS_INTEGER,
    timeout_ms       IN PLS_INTEGER,
    queue_on_timeout IN PLS_INTEGER,
    buf              IN OUT RAW) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_call" WITH CONTEXT
    PARAMETERS (CONTEXT, proxy_id INT, timeout_ms INT, queue_on_timeout INT,
                buf RAW, buf LENGTH INT, buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT);

  -- dco.h: int dco_ext_call_service(OCIExtProcContext *ctx, const char *service,
  --                                  short service_ind, int timeout_ms, int queue_on_timeout,
  --                                  uint8_t *buf, int *buf_len, int *buf_maxlen,
  --                                  short *buf_ind);
  FUNCTION ext_call_service(
    service          IN VARCHAR2,
    timeout_ms       IN PLS_INTEGER,
    queue_on_timeout IN PLS_INTEGER,
    buf              IN OUT RAW) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_call_service" WITH CONTEXT
    PARAMETERS (CONTEXT, service STRING, service INDICATOR SHORT, timeout_ms INT,
                queue_on_timeout INT, buf RAW, buf LENGTH INT, buf MAXLEN INT,
                buf INDICATOR SHORT, RETURN INT);

  -- dco.h: int dco_ext_last_request_id(OCIExtProcContext *ctx);
  FUNCTION ext_last_request_id RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_last_request_id" WITH CONTEXT
    PARAMETERS (CONTEXT, RETURN INT);

  -- dco.h: int dco_ext_last_rcode(OCIExtProcContext *ctx);
  FUNCTION ext_last_rcode RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_last_rcode" WITH CONTEXT
    PARAMETERS (CONTEXT, RETURN INT);

  -- dco.h: int dco_ext_cancel(OCIExtProcContext *ctx, int request_id);
  FUNCTION ext_cancel(request_id IN PLS_INTEGER) RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_cancel" WITH CONTEXT
    PARAMETERS (CONTEXT, request_id INT, RETURN INT);

  -- dco.h: int dco_ext_close(OCIExtProcContext *ctx);
  FUNCTION ext_close RETURN PLS_INTEGER
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_close" WITH CONTEXT
    PARAMETERS (CONTEXT, RETURN INT);

  -- dco.h: char *dco_ext_last_error(OCIExtProcContext *ctx, short *ret_ind);
  FUNCTION ext_last_error RETURN VARCHAR2
    AS LANGUAGE C LIBRARY dco_lib NAME "dco_ext_last_error" WITH CONTEXT
    PARAMETERS (CONTEXT, RETURN INDICATOR SHORT, RETURN STRING);

  -- DCO_E_* codes used here (include/dco.h).
  e_invalid    CONSTANT PLS_INTEGER := -1;
  e_unknown_id CONSTANT PLS_INTEGER := -6;
  e_panic      CONSTANT PLS_INTEGER := -13;

  -- Flags of dco_ext_send_request (DCO_BUFFERED, DCO_ONEWAY).
  f_buffered CONSTANT PLS_INTEGER := 1;
  f_oneway   CONSTANT PLS_INTEGER := 2;

  -- Raises DCO_E_* code as ORA-(20100 - code).
  PROCEDURE raise_dco(code IN PLS_INTEGER, msg IN VARCHAR2) IS
  BEGIN
    RAISE_APPLICATION_ERROR(-(error_base - code), SUBSTR(msg, 1, 2000));
  END raise_dco;

  -- A negative result is a DCO_E_* code. The library has raised it already when it runs
  -- under extproc; this is for the case it could not (no OCIExtProcRaiseExcpWithMsg).
  PROCEDURE check_rc(rc IN PLS_INTEGER) IS
    msg VARCHAR2(2000);
  BEGIN
    IF rc IS NULL THEN
      raise_dco(e_panic, 'DCO_E_PANIC: the library returned NULL');
    ELSIF rc < 0 THEN
      BEGIN
        msg := ext_last_error;
      EXCEPTION
        WHEN OTHERS THEN
          msg := NULL;
      END;
      raise_dco(rc, NVL(msg, 'dco error ' || rc));
    END IF;
  END check_rc;

  -- timeout in ms as dco_ext_* take it: NULL or negative waits without limit (-1).
  FUNCTION wait_ms(timeout IN PLS_INTEGER) RETURN PLS_INTEGER IS
  BEGIN
    IF timeout IS NULL OR timeout < 0 THEN
      RETURN -1;
    END IF;
    RETURN timeout;
  END wait_ms;

  -- Makes reply an empty BLOB to write into: a new temporary one when NULL.
  PROCEDURE reset_blob(reply IN OUT NOCOPY BLOB) IS
  BEGIN
    IF reply IS NULL THEN
      DBMS_LOB.CREATETEMPORARY(reply, TRUE, DBMS_LOB.SESSION);
    ELSE
      DBMS_LOB.TRIM(reply, 0);
    END IF;
  END reset_blob;

  -- Puts a reply of total bytes into reply: first (already read) then the rest, chunk by
  -- chunk with ext_read_chunk (the library releases the reply with its last chunk).
  PROCEDURE fill_reply(
    req_id IN PLS_INTEGER,
    total  IN PLS_INTEGER,
    first  IN RAW,
    reply  IN OUT NOCOPY BLOB) IS
    got PLS_INTEGER := NVL(UTL_RAW.LENGTH(first), 0);
    buf RAW(32767);
    n   PLS_INTEGER;
  BEGIN
    reset_blob(reply);
    IF got > 0 THEN
      DBMS_LOB.WRITEAPPEND(reply, got, first);
    END IF;
    WHILE got < total LOOP
      buf := NULL;
      check_rc(ext_read_chunk(req_id, got, buf));
      n := NVL(UTL_RAW.LENGTH(buf), 0);
      IF n = 0 THEN
        raise_dco(e_panic, 'DCO_E_PANIC: reply ' || req_id || ' ended at byte ' || got ||
                           ' of ' || total);
      END IF;
      DBMS_LOB.WRITEAPPEND(reply, n, buf);
      got := got + n;
    END LOOP;
  END fill_reply;

  PROCEDURE write(data IN RAW) IS
  BEGIN
    check_rc(ext_write(data));
  END write;

  PROCEDURE line(text IN VARCHAR2) IS
  BEGIN
    check_rc(ext_line(text));
  END line;

  FUNCTION send(proxy_id IN PLS_INTEGER, flags IN PLS_INTEGER) RETURN PLS_INTEGER IS
    id PLS_INTEGER;
  BEGIN
    IF proxy_id IS NULL THEN
      raise_dco(e_invalid, 'DCO_E_INVALID: proxy id is NULL');
    END IF;
    id := ext_send_request(proxy_id, flags);
    check_rc(id);
    RETURN id;
  END send;

  FUNCTION send_request(proxy_id IN PLS_INTEGER, buffered IN BOOLEAN DEFAULT FALSE)
    RETURN PLS_INTEGER IS
  BEGIN
    IF buffered THEN
      RETURN send(proxy_id, f_buffered);
    END IF;
    RETURN send(proxy_id, 0);
  END send_request;

  PROCEDURE send_request(proxy_id IN PLS_INTEGER, buffered IN BOOLEAN DEFAULT FALSE) IS
    id PLS_INTEGER;
  BEGIN
    IF buffered THEN
      id := send(proxy_id, f_oneway + f_buffered);
    ELSE
      id := send(proxy_id, f_oneway);
    END IF;
  END send_request;

  FUNCTION send_request(service IN VARCHAR2, buffered IN BOOLEAN DEFAULT FALSE)
    RETURN PLS_INTEGER IS
    id PLS_INTEGER;
  BEGIN
    -- The library checks the name (a NULL one too) and raises invalid.
    id := ext_send_request_to(service, CASE WHEN buffered THEN f_buffered ELSE 0 END);
    check_rc(id);
    RETURN id;
  END send_request;

  PROCEDURE send_request(service IN VARCHAR2, buffered IN BOOLEAN DEFAULT FALSE) IS
    id PLS_INTEGER;
  BEGIN
    id := ext_send_request_to(service,
                              f_oneway + CASE WHEN buffered THEN f_buffered ELSE 0 END);
    check_rc(id);
  END send_request;

  PROCEDURE flush IS
  BEGIN
    check_rc(ext_flush);
  END flush;

  PROCEDURE read_request(
    req_id  IN PLS_INTEGER,
    reply   IN OUT NOCOPY BLOB,
    timeout IN PLS_INTEGER DEFAULT NULL) IS
    buf   RAW(32767);
    total PLS_INTEGER;
  BEGIN
    IF req_id IS NULL THEN
      raise_dco(e_unknown_id, 'DCO_E_UNKNOWN_ID: request id is NULL');
    END IF;
    total := ext_read_request(req_id, wait_ms(timeout), buf);
    check_rc(total);
    fill_reply(req_id, total, buf, reply);
  END read_request;

  PROCEDURE call_sync(
    proxy_id IN PLS_INTEGER,
    reply    IN OUT NOCOPY BLOB,
    timeout  IN PLS_INTEGER DEFAULT NULL) IS
    buf   RAW(32767);
    total PLS_INTEGER;
    id    PLS_INTEGER := 0;
  BEGIN
    IF proxy_id IS NULL THEN
      raise_dco(e_invalid, 'DCO_E_INVALID: proxy id is NULL');
    END IF;
    total := ext_call_sync(proxy_id, wait_ms(timeout), buf);
    check_rc(total);
    IF total > NVL(UTL_RAW.LENGTH(buf), 0) THEN
      -- Longer than one RAW: the rest is read by request id.
      id := ext_last_request_id;
      check_rc(id);
    END IF;
    fill_reply(id, total, buf, reply);
  END call_sync;

  -- On timeout with queue_on_timeout the library raises queued (ORA-20114) and keeps the
  -- request: its answer is read later with read_request(last_request_id, ...).
  PROCEDURE call(
    proxy_id         IN PLS_INTEGER,
    reply            IN OUT NOCOPY BLOB,
    timeout          IN PLS_INTEGER DEFAULT NULL,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) IS
    buf   RAW(32767);
    total PLS_INTEGER;
    id    PLS_INTEGER := 0;
    qot   PLS_INTEGER := 0;
  BEGIN
    IF proxy_id IS NULL THEN
      raise_dco(e_invalid, 'DCO_E_INVALID: proxy id is NULL');
    END IF;
    IF queue_on_timeout THEN
      qot := 1;
    END IF;
    total := ext_call(proxy_id, wait_ms(timeout), qot, buf);
    check_rc(total);
    IF total > NVL(UTL_RAW.LENGTH(buf), 0) THEN
      -- Longer than one RAW: the rest is read by request id.
      id := ext_last_request_id;
      check_rc(id);
    END IF;
    fill_reply(id, total, buf, reply);
  END call;

  PROCEDURE call(
    service          IN VARCHAR2,
    reply            IN OUT NOCOPY BLOB,
    timeout          IN PLS_INTEGER DEFAULT NULL,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) IS
    buf   RAW(32767);
    total PLS_INTEGER;
    id    PLS_INTEGER := 0;
    qot   PLS_INTEGER := 0;
  BEGIN
    IF queue_on_timeout THEN
      qot := 1;
    END IF;
    -- The library checks the name (a NULL one too) and raises invalid.
    total := ext_call_service(service, wait_ms(timeout), qot, buf);
    check_rc(total);
    IF total > NVL(UTL_RAW.LENGTH(buf), 0) THEN
      -- Longer than one RAW: the rest is read by request id.
      id := ext_last_request_id;
      check_rc(id);
    END IF;
    fill_reply(id, total, buf, reply);
  END call;

  FUNCTION last_rcode RETURN PLS_INTEGER IS
  BEGIN
    RETURN ext_last_rcode;
  END last_rcode;

  FUNCTION last_request_id RETURN PLS_INTEGER IS
    id PLS_INTEGER;
  BEGIN
    id := ext_last_request_id;
    check_rc(id);
    RETURN id;
  END last_request_id;

  FUNCTION last_error RETURN VARCHAR2 IS
  BEGIN
    RETURN ext_last_error;
  END last_error;

  PROCEDURE cancel(req_id IN PLS_INTEGER) IS
  BEGIN
    IF req_id IS NULL THEN
      raise_dco(e_unknown_id, 'DCO_E_UNKNOWN_ID: request id is NULL');
    END IF;
    check_rc(ext_cancel(req_id));
  END cancel;

  PROCEDURE set_hubs(hubs IN VARCHAR2, secret IN VARCHAR2 DEFAULT NULL) IS
  BEGIN
    raise_dco(e_invalid, 'DCO_E_INVALID: the extproc body takes its hub list from DCO_HUB ' ||
                         '(and DCO_SECRET) in the extproc agent''s environment (extproc.ora); ' ||
                         'set_hubs applies to the UTL_TCP body only');
  END set_hubs;

  PROCEDURE close IS
  BEGIN
    check_rc(ext_close);
  END close;
END dco;
/
