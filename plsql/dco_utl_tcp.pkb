CREATE OR REPLACE PACKAGE BODY dco AS
  /*
   * dco over UTL_TCP: the hub's binary protocol (docs/PROTOCOL.md, src/wire/frame.rs) in pure
   * PL/SQL, for databases where extproc is not allowed. The hub serves it like any caller.
   *
   * Frames: an 8-byte header (u32 payload length | u8 type | 3 zero bytes), then the payload;
   * every integer big-endian. This body sends HELLO (role caller), REQUEST, DONE, CANCEL,
   * PING and PONG, and reads WELCOME, REFUSE, QUIT, ACK, REPLY, PING and PONG. It says
   * protocol version 1 in HELLO, which a version-2 hub still serves: REQUEST's flags
   * (queue-on-timeout) and timeout_ms (the deadline of a sync request) work the same there,
   * and the version-2 frames are not sent to it. A QUEUED frame (version 2) is read and
   * skipped all the same.
   *
   * The byte sequences it writes and the answers it expects are in plsql/protocol_fixture.txt,
   * which tests/utl_tcp_replay.rs replays against a real hub. Each function below that builds
   * or reads bytes names the fixture steps it produces ("fixture: ..."); change one, change the
   * other.
   *
   * Session (one per database session, in package state):
   * - a random non-zero 8-byte session id, kept across reconnects so the hub knows it again;
   * - request ids 1, 2, 3, ... (never reused in the session);
   * - every request stays in g_log until the hub acknowledges it (ACK), and is written again
   *   after a reconnect, to the same hub or the next of the list; the hub runs a resent
   *   request only once;
   * - replies are parked in g_pending by request id, so they can be read in any order;
   * - the ids of replies read are told to the hub (DONE) with the next write, so it can
   *   forget them; until then it keeps them and sends them again after a reconnect;
   * - a cancelled request stays in g_pending as the outcome "cancelled" until read once (then
   *   unknown_id); its CANCEL waits in g_cancel for a write that comes after its REQUEST
   *   (never before it: a buffered request's CANCEL follows it in the write that sends it),
   *   and goes again after a reconnect while the outcome is not read.
   *
   * Waiting: UTL_TCP.AVAILABLE(connection, seconds) waits for the first byte of a frame; the
   * rest of a frame is read with the connection's tx_timeout. The hub sends a PING whenever it
   * has been silent for its keep-alive interval (WELCOME), so no byte for three intervals means
   * a dead link: the connection is dropped and made again.
   *
   * Reconnecting: a blocking call (read_request, call_sync, call, flush) that finds the
   * connection lost, or no hub answering, connects again (reconnect_until), to the same hub or
   * the next of the list, pausing between rounds (20 ms, doubling up to 1 s; pause_cs is the
   * one place that sleeps) until the call's own deadline: not_connected only when no hub
   * answered by then. No deadline (a NULL timeout): it keeps trying. A passed deadline (a 0
   * timeout): one round. send_request does not wait: no hub, not_connected at once.
   */

  -- Frame types (docs/PROTOCOL.md section 4).
  t_hello   CONSTANT PLS_INTEGER := 1;    -- 0x01
  t_welcome CONSTANT PLS_INTEGER := 2;    -- 0x02
  t_refuse  CONSTANT PLS_INTEGER := 3;    -- 0x03
  t_quit    CONSTANT PLS_INTEGER := 4;    -- 0x04
  t_request CONSTANT PLS_INTEGER := 16;   -- 0x10
  t_ack     CONSTANT PLS_INTEGER := 17;   -- 0x11
  t_reply   CONSTANT PLS_INTEGER := 18;   -- 0x12
  t_cancel  CONSTANT PLS_INTEGER := 19;   -- 0x13
  t_done    CONSTANT PLS_INTEGER := 20;   -- 0x14
  t_queued  CONSTANT PLS_INTEGER := 21;   -- 0x15 (version 2: never sent to this body)
  t_ping    CONSTANT PLS_INTEGER := 48;   -- 0x30
  t_pong    CONSTANT PLS_INTEGER := 49;   -- 0x31

  -- REQUEST flags: no reply wanted (wire::REQ_ONEWAY); on timeout the request goes on and
  -- its answer is parked (wire::REQ_QUEUE_ON_TIMEOUT, DCO_QUEUE_ON_TIMEOUT in dco.h).
  req_oneway           CONSTANT PLS_INTEGER := 1;
  req_queue_on_timeout CONSTANT PLS_INTEGER := 4;
  req_service          CONSTANT PLS_INTEGER := 32;  -- the body starts with a service name

  -- DCO_E_* codes (include/dco.h, src/status.rs).
  e_invalid       CONSTANT PLS_INTEGER := -1;
  e_timeout       CONSTANT PLS_INTEGER := -2;
  e_not_connected CONSTANT PLS_INTEGER := -4;
  e_busy          CONSTANT PLS_INTEGER := -5;
  e_unknown_id    CONSTANT PLS_INTEGER := -6;
  e_too_large     CONSTANT PLS_INTEGER := -7;
  e_system        CONSTANT PLS_INTEGER := -9;
  e_cancelled     CONSTANT PLS_INTEGER := -10;
  e_refused       CONSTANT PLS_INTEGER := -11;
  e_protocol      CONSTANT PLS_INTEGER := -12;
  e_queued        CONSTANT PLS_INTEGER := -14;

  c_chunk        CONSTANT PLS_INTEGER := 32767;      -- the most a RAW holds
  c_tx_timeout_s CONSTANT PLS_INTEGER := 10;         -- UTL_TCP wait for the rest of a frame
  c_greet_wait_s CONSTANT PLS_INTEGER := 10;         -- wait for WELCOME
  c_flush_wait_cs CONSTANT PLS_INTEGER := 1000;      -- flush waits 10 s for the ACK
  c_backoff_first_cs CONSTANT PLS_INTEGER := 2;      -- first pause between reconnects: 20 ms
  c_backoff_cap_cs   CONSTANT PLS_INTEGER := 100;    -- longest pause: 1 s
  c_done_batch   CONSTANT PLS_INTEGER := 256;        -- send DONE when this many wait
  c_max_name     CONSTANT PLS_INTEGER := 255;        -- HELLO name limit

  -- A byte string that may be longer than a RAW: parts 1..n of at most 32767 bytes each.
  TYPE raw_list IS TABLE OF RAW(32767) INDEX BY PLS_INTEGER;
  TYPE bytes_t IS RECORD (
    len   NUMBER,
    parts raw_list);

  -- A request kept until the hub acknowledges it.
  TYPE logged_t IS RECORD (
    proxy      PLS_INTEGER,
    flags      PLS_INTEGER,
    timeout_ms NUMBER,         -- REQUEST's timeout_ms: 0 for none
    body       bytes_t,
    answered   BOOLEAN);
  TYPE log_map IS TABLE OF logged_t INDEX BY PLS_INTEGER;

  -- A request whose outcome the application has not read yet.
  TYPE pending_t IS RECORD (
    arrived   BOOLEAN,
    status    PLS_INTEGER,
    rcode     PLS_INTEGER,
    body      bytes_t,
    cancelled BOOLEAN);       -- the outcome is "cancelled" (dco.cancel), not the hub's
  TYPE pending_map IS TABLE OF pending_t INDEX BY PLS_INTEGER;

  TYPE hub_t IS RECORD (host VARCHAR2(255), port PLS_INTEGER);
  TYPE hub_list IS TABLE OF hub_t INDEX BY PLS_INTEGER;

  TYPE id_set IS TABLE OF BOOLEAN INDEX BY PLS_INTEGER;

  -- Settings (kept by close).
  g_hub_spec  VARCHAR2(4000) := '127.0.0.1:7790';
  g_hubs      hub_list;
  g_secret    RAW(2000);

  -- The connection.
  g_conn         UTL_TCP.CONNECTION;
  g_connected    BOOLEAN := FALSE;
  g_hub_index    PLS_INTEGER := 1;
  g_hub_id       RAW(8);
  g_max_frame    NUMBER := 16777216;
  g_quota        NUMBER := 65536;
  g_keepalive_ms NUMBER := 5000;
  g_last_rx      NUMBER := 0;        -- clock (centiseconds) of the last frame read
  g_pong         RAW(16);            -- PONG to the hub's last PING, sent with the next write

  -- The session.
  g_session     RAW(8);
  g_next_id     PLS_INTEGER := 1;
  g_written_id  PLS_INTEGER := 0;    -- highest id written to the current connection
  g_acked       NUMBER := 0;         -- highest id the hub acknowledged
  g_body        bytes_t;
  g_log         log_map;
  g_pending     pending_map;
  g_done        id_set;              -- replies read, to tell the hub (DONE)
  g_cancel      id_set;              -- requests given up or cancelled, to tell the hub (CANCEL)
  g_last_rcode  PLS_INTEGER := 0;
  g_last_id     PLS_INTEGER := 0;
  g_last_error  VARCHAR2(2000);

  -- A clock in centiseconds that does not wrap (DBMS_UTILITY.GET_TIME does, every 497 days).
  g_clock_last  NUMBER;
  g_clock_base  NUMBER := 0;

  ----------------------------------------------------------------------------------------------
  -- Errors

  FUNCTION code_name(code IN PLS_INTEGER) RETURN VARCHAR2 IS
  BEGIN
    RETURN CASE code
      WHEN -1 THEN 'DCO_E_INVALID'
      WHEN -2 THEN 'DCO_E_TIMEOUT'
      WHEN -3 THEN 'DCO_E_NO_ROUTE'
      WHEN -4 THEN 'DCO_E_NOT_CONNECTED'
      WHEN -5 THEN 'DCO_E_BUSY'
      WHEN -6 THEN 'DCO_E_UNKNOWN_ID'
      WHEN -7 THEN 'DCO_E_TOO_LARGE'
      WHEN -8 THEN 'DCO_E_APP_FAIL'
      WHEN -9 THEN 'DCO_E_SYSTEM'
      WHEN -10 THEN 'DCO_E_CANCELLED'
      WHEN -11 THEN 'DCO_E_REFUSED'
      WHEN -12 THEN 'DCO_E_PROTOCOL'
      WHEN -13 THEN 'DCO_E_PANIC'
      WHEN -14 THEN 'DCO_E_QUEUED'
      ELSE 'DCO_E_SYSTEM'
    END;
  END code_name;

  -- Raises DCO_E_* code as ORA-(20100 - code); a code from the wire that is not a dco code is
  -- a system failure (as Status::from_code).
  PROCEDURE fail(code IN PLS_INTEGER, msg IN VARCHAR2) IS
    c PLS_INTEGER := code;
  BEGIN
    IF c IS NULL OR c NOT BETWEEN -14 AND -1 THEN
      c := e_system;
    END IF;
    g_last_error := SUBSTR(code_name(c) || ': ' || msg, 1, 2000);
    RAISE_APPLICATION_ERROR(-(error_base - c), g_last_error);
  END fail;

  -- Whether the error being handled is one of dco's (ORA-20101 .. ORA-20114).
  FUNCTION is_dco_error(sqlcode_ IN PLS_INTEGER) RETURN BOOLEAN IS
  BEGIN
    RETURN sqlcode_ BETWEEN -(error_base + 14) AND -(error_base + 1);
  END is_dco_error;

  ----------------------------------------------------------------------------------------------
  -- Bytes

  FUNCTION now_cs RETURN NUMBER IS
    t NUMBER := DBMS_UTILITY.GET_TIME;
  BEGIN
    IF g_clock_last IS NOT NULL AND t < g_clock_last THEN
      g_clock_base := g_clock_base + 4294967296;
    END IF;
    g_clock_last := t;
    RETURN g_clock_base + t;
  END now_cs;

  -- The deadline (clock in centiseconds) of a call's timeout in ms: NULL (or negative) for
  -- none; 0 is now (only a look, and one connection attempt if there is no connection).
  FUNCTION deadline_of(timeout IN PLS_INTEGER) RETURN NUMBER IS
  BEGIN
    IF timeout IS NULL OR timeout < 0 THEN
      RETURN NULL;
    END IF;
    RETURN now_cs + CEIL(timeout / 10);
  END deadline_of;

  -- Pauses cs centiseconds between reconnects: the one place the body sleeps. DBMS_SESSION.SLEEP
  -- is Oracle 18c and later; on an older release use DBMS_LOCK.SLEEP(cs / 100) here instead
  -- (EXECUTE on SYS.DBMS_LOCK granted to the schema).
  PROCEDURE pause_cs(cs IN NUMBER) IS
  BEGIN
    IF cs > 0 THEN
      DBMS_SESSION.SLEEP(ROUND(cs) / 100);
    END IF;
  END pause_cs;

  -- u32, big-endian (0 <= n < 2^32).
  FUNCTION u32(n IN NUMBER) RETURN RAW IS
  BEGIN
    IF n >= 2147483648 THEN
      RETURN UTL_RAW.CAST_FROM_BINARY_INTEGER(n - 4294967296, UTL_RAW.BIG_ENDIAN);
    END IF;
    RETURN UTL_RAW.CAST_FROM_BINARY_INTEGER(n, UTL_RAW.BIG_ENDIAN);
  END u32;

  -- i32, big-endian two's complement.
  FUNCTION i32(n IN PLS_INTEGER) RETURN RAW IS
  BEGIN
    RETURN UTL_RAW.CAST_FROM_BINARY_INTEGER(n, UTL_RAW.BIG_ENDIAN);
  END i32;

  -- u16, big-endian.
  FUNCTION u16(n IN PLS_INTEGER) RETURN RAW IS
  BEGIN
    RETURN UTL_RAW.SUBSTR(u32(n), 3, 2);
  END u16;

  -- u64, big-endian, of a request id (0 <= n < 2^31): four zero bytes, then the id.
  FUNCTION u64(n IN PLS_INTEGER) RETURN RAW IS
  BEGIN
    RETURN UTL_RAW.CONCAT(HEXTORAW('00000000'), i32(n));
  END u64;

  -- The byte at pos (1-based) of r, 0..255.
  FUNCTION get_u8(r IN RAW, pos IN PLS_INTEGER) RETURN PLS_INTEGER IS
  BEGIN
    RETURN TO_NUMBER(RAWTOHEX(UTL_RAW.SUBSTR(r, pos, 1)), 'XX');
  END get_u8;

  FUNCTION get_u16(r IN RAW, pos IN PLS_INTEGER) RETURN PLS_INTEGER IS
  BEGIN
    RETURN TO_NUMBER(RAWTOHEX(UTL_RAW.SUBSTR(r, pos, 2)), 'XXXX');
  END get_u16;

  FUNCTION get_i32(r IN RAW, pos IN PLS_INTEGER) RETURN PLS_INTEGER IS
  BEGIN
    RETURN UTL_RAW.CAST_TO_BINARY_INTEGER(UTL_RAW.SUBSTR(r, pos, 4), UTL_RAW.BIG_ENDIAN);
  END get_i32;

  FUNCTION get_u32(r IN RAW, pos IN PLS_INTEGER) RETURN NUMBER IS
    v NUMBER := get_i32(r, pos);
  BEGIN
    IF v < 0 THEN
      v := v + 4294967296;
    END IF;
    RETURN v;
  END get_u32;

  -- u64 (high half first) as a NUMBER.
  FUNCTION get_u64(r IN RAW, pos IN PLS_INTEGER) RETURN NUMBER IS
  BEGIN
    RETURN get_u32(r, pos) * 4294967296 + get_u32(r, pos + 4);
  END get_u64;

  -- Text from the hub (UTF-8) for a message, cut to fit.
  FUNCTION text_of(b IN bytes_t) RETURN VARCHAR2 IS
  BEGIN
    IF b.parts.COUNT = 0 THEN
      RETURN NULL;
    END IF;
    RETURN SUBSTR(UTL_I18N.RAW_TO_CHAR(UTL_RAW.SUBSTR(b.parts(1), 1,
                  LEAST(UTL_RAW.LENGTH(b.parts(1)), 1000)), 'AL32UTF8'), 1, 1000);
  END text_of;

  PROCEDURE clear_bytes(b IN OUT NOCOPY bytes_t) IS
  BEGIN
    b.len := 0;
    b.parts.DELETE;
  END clear_bytes;

  -- Appends r to b, filling the last part before starting a new one.
  PROCEDURE append(b IN OUT NOCOPY bytes_t, r IN RAW) IS
    n    PLS_INTEGER := NVL(UTL_RAW.LENGTH(r), 0);
    last PLS_INTEGER := b.parts.LAST;
    room PLS_INTEGER;
  BEGIN
    IF n = 0 THEN
      RETURN;
    END IF;
    b.len := NVL(b.len, 0) + n;
    IF last IS NOT NULL THEN
      room := c_chunk - UTL_RAW.LENGTH(b.parts(last));
      IF room >= n THEN
        b.parts(last) := UTL_RAW.CONCAT(b.parts(last), r);
        RETURN;
      ELSIF room > 0 THEN
        b.parts(last) := UTL_RAW.CONCAT(b.parts(last), UTL_RAW.SUBSTR(r, 1, room));
        b.parts(last + 1) := UTL_RAW.SUBSTR(r, room + 1);
        RETURN;
      END IF;
    END IF;
    b.parts(NVL(last, 0) + 1) := r;
  END append;

  ----------------------------------------------------------------------------------------------
  -- Frames written (fixture: the "write" steps)

  -- The 8-byte header: u32 payload length | u8 type | 3 zero bytes.
  FUNCTION frame_head(kind IN PLS_INTEGER, len IN NUMBER) RETURN RAW IS
  BEGIN
    RETURN UTL_RAW.CONCAT(u32(len), UTL_RAW.SUBSTR(i32(kind), 4, 1), HEXTORAW('000000'));
  END frame_head;

  -- HELLO as a caller (fixture: hello): magic "DCO!", version 1, role 1, flags 0, the session
  -- id, capacity 0, the name (at most 255 bytes), the secret, no proxy ids.
  FUNCTION hello_frame(p_session IN RAW, p_name IN VARCHAR2, p_secret IN RAW) RETURN RAW IS
    n  RAW(32767) := UTL_RAW.CAST_TO_RAW(p_name);
    nl PLS_INTEGER := NVL(UTL_RAW.LENGTH(n), 0);
    sl PLS_INTEGER := NVL(UTL_RAW.LENGTH(p_secret), 0);
  BEGIN
    IF nl > c_max_name THEN
      n := UTL_RAW.SUBSTR(n, 1, c_max_name);
      nl := c_max_name;
    END IF;
    RETURN UTL_RAW.CONCAT(
      frame_head(t_hello, 26 + nl + sl),
      HEXTORAW('44434F21' || '0001' || '01' || '00'),
      p_session,
      HEXTORAW('00000000'),
      u16(nl), n,
      u16(sl), p_secret,
      HEXTORAW('0000'));
  END hello_frame;

  -- The fixed part of a REQUEST (fixture: call_sync_1, flush_batch, one_way, no_route,
  -- call_queue): the header, then u64 id, i32 proxy, u32 flags, u32 timeout_ms (the call's
  -- timeout, which the hub keeps as the deadline of a sync request; 0: none); the body
  -- follows.
  FUNCTION request_head(id IN PLS_INTEGER, proxy IN PLS_INTEGER, flags IN PLS_INTEGER,
                        timeout_ms IN NUMBER, body_len IN NUMBER) RETURN RAW IS
  BEGIN
    RETURN UTL_RAW.CONCAT(frame_head(t_request, 20 + body_len), u64(id), i32(proxy),
                          u32(flags), u32(timeout_ms));
  END request_head;

  -- DONE with the ids of g_done, ascending (fixture: flush_batch, resend, call_queue, close).
  FUNCTION done_frame RETURN RAW IS
    ids RAW(32767);
    n   PLS_INTEGER := 0;
    id  PLS_INTEGER := g_done.FIRST;
  BEGIN
    WHILE id IS NOT NULL LOOP
      ids := UTL_RAW.CONCAT(ids, u64(id));
      n := n + 1;
      id := g_done.NEXT(id);
    END LOOP;
    RETURN UTL_RAW.CONCAT(frame_head(t_done, 8 * n), ids);
  END done_frame;

  -- PING with the nonce n (fixture: flush_batch, after the batch: the hub answers with its
  -- ACK as soon as what came before is journaled, and a PONG).
  FUNCTION ping_frame(n IN PLS_INTEGER) RETURN RAW IS
  BEGIN
    RETURN UTL_RAW.CONCAT(frame_head(t_ping, 8), u64(n));
  END ping_frame;

  -- PONG echoing the 8 nonce bytes of the hub's PING (the replay answers PINGs the same way).
  FUNCTION pong_frame(nonce IN RAW) RETURN RAW IS
  BEGIN
    RETURN UTL_RAW.CONCAT(frame_head(t_pong, 8), nonce);
  END pong_frame;

  FUNCTION cancel_frame(id IN PLS_INTEGER) RETURN RAW IS
  BEGIN
    RETURN UTL_RAW.CONCAT(frame_head(t_cancel, 8), u64(id));
  END cancel_frame;

  ----------------------------------------------------------------------------------------------
  -- The connection

  PROCEDURE close_quietly IS
  BEGIN
    IF g_connected THEN
      g_connected := FALSE;
      BEGIN
        UTL_TCP.CLOSE_CONNECTION(g_conn);
      EXCEPTION
        WHEN OTHERS THEN
          NULL;
      END;
    END IF;
    g_pong := NULL;
  END close_quietly;

  -- The connection is gone: everything stays for a resend on the next one. Raises.
  PROCEDURE lost(code IN PLS_INTEGER, msg IN VARCHAR2) IS
  BEGIN
    close_quietly;
    fail(code, msg);
  END lost;

  -- Writes r into the connection's buffer (sent by flush_out or when the buffer fills).
  PROCEDURE send_out(r IN RAW) IS
    n PLS_INTEGER;
  BEGIN
    IF r IS NULL THEN
      RETURN;
    END IF;
    n := UTL_TCP.WRITE_RAW(g_conn, r);
  EXCEPTION
    WHEN OTHERS THEN
      IF is_dco_error(SQLCODE) THEN
        RAISE;
      END IF;
      lost(e_not_connected, 'sending to the hub failed: ' || SQLERRM);
  END send_out;

  PROCEDURE flush_out IS
  BEGIN
    UTL_TCP.FLUSH(g_conn);
  EXCEPTION
    WHEN OTHERS THEN
      lost(e_not_connected, 'sending to the hub failed: ' || SQLERRM);
  END flush_out;

  -- Reads exactly n bytes (n <= 32767).
  FUNCTION read_exact(n IN PLS_INTEGER) RETURN RAW IS
    buf   RAW(32767);
    piece RAW(32767);
    got   PLS_INTEGER := 0;
    k     PLS_INTEGER;
  BEGIN
    WHILE got < n LOOP
      piece := NULL;
      k := UTL_TCP.READ_RAW(g_conn, piece, n - got);
      IF k IS NULL OR k <= 0 THEN
        lost(e_not_connected, 'the hub stopped sending in the middle of a frame');
      END IF;
      buf := UTL_RAW.CONCAT(buf, piece);
      got := got + k;
    END LOOP;
    RETURN buf;
  EXCEPTION
    WHEN UTL_TCP.END_OF_INPUT THEN
      lost(e_not_connected, 'the hub closed the connection');
    WHEN UTL_TCP.TRANSFER_TIMEOUT THEN
      lost(e_not_connected, 'the hub stopped sending in the middle of a frame');
    WHEN OTHERS THEN
      IF is_dco_error(SQLCODE) THEN
        RAISE;
      END IF;
      lost(e_not_connected, 'reading from the hub failed: ' || SQLERRM);
  END read_exact;

  -- Reads n bytes into parts of at most 32767.
  PROCEDURE read_bytes(n IN NUMBER, b IN OUT NOCOPY bytes_t) IS
    remaining NUMBER := n;
    k         PLS_INTEGER;
  BEGIN
    clear_bytes(b);
    WHILE remaining > 0 LOOP
      k := LEAST(remaining, c_chunk);
      append(b, read_exact(k));
      remaining := remaining - k;
    END LOOP;
  END read_bytes;

  -- Reads one frame from the hub (fixture: every "read", "ack" and "reply" step): the header,
  -- checked as the hub's decoder checks it, then the fixed fields of its type into fields and
  -- the rest of the payload (a body or a message) into rest.
  PROCEDURE read_frame(kind OUT PLS_INTEGER, fields OUT RAW, rest IN OUT NOCOPY bytes_t) IS
    head RAW(8);
    len  NUMBER;
    nfix PLS_INTEGER;
  BEGIN
    head := read_exact(8);
    len := get_u32(head, 1);
    kind := get_u8(head, 5);
    IF UTL_RAW.SUBSTR(head, 6, 3) <> HEXTORAW('000000') THEN
      lost(e_protocol, 'reserved header bytes are not zero');
    END IF;
    IF len > g_max_frame + 64 THEN
      lost(e_protocol, 'frame of ' || len || ' bytes is over the limit');
    END IF;
    nfix := CASE kind
      WHEN t_welcome THEN 32
      WHEN t_refuse THEN 4
      WHEN t_quit THEN 0
      WHEN t_ack THEN 8
      WHEN t_reply THEN 16
      WHEN t_ping THEN 8
      WHEN t_pong THEN 8
      WHEN t_queued THEN 12
      ELSE -1
    END;
    IF nfix < 0 THEN
      lost(e_protocol, 'unexpected frame type ' || kind || ' from the hub');
    END IF;
    IF len < nfix OR (kind IN (t_welcome, t_ack, t_ping, t_pong, t_queued) AND len <> nfix) THEN
      lost(e_protocol, 'malformed frame of type ' || kind || ' (' || len || ' bytes)');
    END IF;
    fields := NULL;
    IF nfix > 0 THEN
      fields := read_exact(nfix);
    END IF;
    read_bytes(len - nfix, rest);
    g_last_rx := now_cs;
  END read_frame;

  PROCEDURE parse_hubs(spec IN VARCHAR2, hubs OUT hub_list) IS
    item  VARCHAR2(4000);
    pos   PLS_INTEGER := 1;
    comma PLS_INTEGER;
    c    PLS_INTEGER;
    host VARCHAR2(4000);
    port VARCHAR2(4000);
  BEGIN
    IF spec IS NULL THEN
      fail(e_invalid, 'empty hub list');
    END IF;
    LOOP
      comma := INSTR(spec, ',', pos);
      item := TRIM(CASE WHEN comma = 0 THEN SUBSTR(spec, pos)
                        ELSE SUBSTR(spec, pos, comma - pos) END);
      IF item IS NOT NULL THEN
        IF LOWER(item) LIKE 'unix:%' THEN
          fail(e_invalid, 'UTL_TCP reaches hubs over TCP only, not ' || item);
        END IF;
        c := INSTR(item, ':', -1);
        host := RTRIM(LTRIM(SUBSTR(item, 1, c - 1), '['), ']');
        port := SUBSTR(item, c + 1);
        IF c = 0 OR host IS NULL OR NOT REGEXP_LIKE(port, '^[0-9]{1,5}$')
           OR TO_NUMBER(port) NOT BETWEEN 1 AND 65535 OR LENGTH(host) > 255 THEN
          fail(e_invalid, 'bad hub address "' || item || '": want host:port');
        END IF;
        hubs(hubs.COUNT + 1).host := host;
        hubs(hubs.COUNT).port := TO_NUMBER(port);
      END IF;
      EXIT WHEN comma = 0;
      pos := comma + 1;
    END LOOP;
    IF hubs.COUNT = 0 THEN
      fail(e_invalid, 'empty hub list');
    END IF;
  END parse_hubs;

  -- A random non-zero session id: DBMS_RANDOM mixed with SYS_GUID.
  FUNCTION new_session_id RETURN RAW IS
    r RAW(8);
  BEGIN
    LOOP
      r := UTL_RAW.BIT_XOR(
             UTL_RAW.CONCAT(u32(TRUNC(DBMS_RANDOM.VALUE(0, 4294967296))),
                            u32(TRUNC(DBMS_RANDOM.VALUE(0, 4294967296)))),
             UTL_RAW.SUBSTR(SYS_GUID(), 9, 8));
      EXIT WHEN r <> HEXTORAW('0000000000000000');
    END LOOP;
    RETURN r;
  END new_session_id;

  -- The name the hub shows for this session: plsql:USER[SID].
  FUNCTION session_name RETURN VARCHAR2 IS
  BEGIN
    RETURN 'plsql:' || SYS_CONTEXT('USERENV', 'SESSION_USER') || '[' ||
           SYS_CONTEXT('USERENV', 'SID') || ']';
  END session_name;

  -- Connects to hub i and greets it (fixture: hello, welcome): writes HELLO, reads one frame,
  -- WELCOME (its fields: u16 version at 1, reserved at 3, u32 max_frame at 5, u32 quota at 9,
  -- u32 keepalive_ms at 13, u64 session at 17, u64 hub_id at 25) or REFUSE (i32 code, text).
  -- Waits for it up to 10 s, or until deadline (clock in centiseconds; NULL: none) if sooner,
  -- but at least a second (UTL_TCP.AVAILABLE counts whole seconds). Returns the hub id.
  FUNCTION greet(i IN PLS_INTEGER, deadline IN NUMBER) RETURN RAW IS
    kind   PLS_INTEGER;
    fields RAW(32);
    rest   bytes_t;
    wait_s PLS_INTEGER := c_greet_wait_s;
    n      PLS_INTEGER;
  BEGIN
    IF deadline IS NOT NULL THEN
      wait_s := GREATEST(1, LEAST(c_greet_wait_s, CEIL((deadline - now_cs) / 100)));
    END IF;
    BEGIN
      g_conn := UTL_TCP.OPEN_CONNECTION(
        remote_host     => g_hubs(i).host,
        remote_port     => g_hubs(i).port,
        in_buffer_size  => c_chunk,
        out_buffer_size => c_chunk,
        tx_timeout      => c_tx_timeout_s);
    EXCEPTION
      WHEN OTHERS THEN
        -- No network ACL for this host: a setting to fix, not a hub to wait for.
        IF INSTR(SQLERRM, 'ORA-24247') > 0 THEN
          fail(e_refused, SQLERRM || ' (the schema needs a network ACL for this hub: ' ||
                          'docs/ORACLE.md)');
        END IF;
        fail(e_not_connected, SQLERRM);
    END;
    g_connected := TRUE;
    g_pong := NULL;
    send_out(hello_frame(g_session, session_name, g_secret));
    flush_out;
    BEGIN
      n := UTL_TCP.AVAILABLE(g_conn, wait_s);
    EXCEPTION
      WHEN OTHERS THEN
        lost(e_not_connected, SQLERRM);
    END;
    IF n = 0 THEN
      lost(e_not_connected, 'no WELCOME in time');
    END IF;
    read_frame(kind, fields, rest);
    IF kind = t_refuse THEN
      lost(get_i32(fields, 1), 'refused: ' || text_of(rest));
    ELSIF kind <> t_welcome THEN
      lost(e_protocol, 'expected WELCOME, got a frame of type ' || kind);
    END IF;
    IF get_u16(fields, 1) <> 1 THEN
      lost(e_protocol, 'the hub speaks protocol version ' || get_u16(fields, 1));
    END IF;
    IF UTL_RAW.SUBSTR(fields, 17, 8) <> g_session THEN
      lost(e_protocol, 'WELCOME names another session');
    END IF;
    g_max_frame := get_u32(fields, 5);
    g_quota := get_u32(fields, 9);
    g_keepalive_ms := GREATEST(get_u32(fields, 13), 100);
    RETURN UTL_RAW.SUBSTR(fields, 25, 8);
  END greet;

  -- Connected to hub id: if another hub acknowledged requests still waiting for their answer,
  -- those answers are with that hub, not this one: they fail with DCO_E_SYSTEM.
  PROCEDURE adopt_hub(id IN RAW) IS
    rid PLS_INTEGER;
  BEGIN
    IF g_hub_id IS NOT NULL AND g_hub_id <> id THEN
      rid := g_pending.FIRST;
      WHILE rid IS NOT NULL AND rid <= g_acked LOOP
        IF NOT g_pending(rid).arrived THEN
          g_pending(rid).arrived := TRUE;
          g_pending(rid).status := e_system;
          g_pending(rid).rcode := 0;
          clear_bytes(g_pending(rid).body);
          append(g_pending(rid).body, UTL_RAW.CAST_TO_RAW(
            'accepted by a hub that is no longer reachable; its answer waits there'));
        END IF;
        rid := g_pending.NEXT(rid);
      END LOOP;
    END IF;
    g_hub_id := id;
  END adopt_hub;

  -- Writes the REQUEST of logged request id.
  PROCEDURE send_logged(id IN PLS_INTEGER) IS
  BEGIN
    send_out(request_head(id, g_log(id).proxy, g_log(id).flags, NVL(g_log(id).timeout_ms, 0),
                          NVL(g_log(id).body.len, 0)));
    FOR k IN 1 .. g_log(id).body.parts.COUNT LOOP
      send_out(g_log(id).body.parts(k));
    END LOOP;
  END send_logged;

  -- Writes a CANCEL for each request of g_cancel up to upto (requests already written to
  -- this connection): a CANCEL never goes before its REQUEST. Those after upto wait.
  PROCEDURE send_cancels(upto IN PLS_INTEGER) IS
    id PLS_INTEGER := g_cancel.FIRST;
  BEGIN
    WHILE id IS NOT NULL AND id <= upto LOOP
      send_out(cancel_frame(id));
      g_cancel.DELETE(id);
      id := g_cancel.FIRST;
    END LOOP;
  END send_cancels;

  -- Whether control frames wait for a write: a PONG, or a CANCEL of a request written.
  FUNCTION ctl_waiting RETURN BOOLEAN IS
  BEGIN
    RETURN g_pong IS NOT NULL OR (g_cancel.FIRST IS NOT NULL AND g_cancel.FIRST <= g_written_id);
  END ctl_waiting;

  -- Writes the waiting PONG, the DONE list, and the CANCELs of requests already written.
  PROCEDURE send_ctl IS
  BEGIN
    IF g_pong IS NOT NULL THEN
      send_out(g_pong);
      g_pong := NULL;
    END IF;
    IF g_done.COUNT > 0 THEN
      send_out(done_frame);
      g_done.DELETE;
    END IF;
    send_cancels(g_written_id);
  END send_ctl;

  -- On a new connection (fixture: resend): writes again every request written before and
  -- neither acknowledged nor answered, then the DONE list, then the CANCELs: those not
  -- written yet, and again those of the cancelled requests whose outcome is not read (the
  -- lost connection may have taken them; a CANCEL the hub had already does nothing).
  PROCEDURE resend IS
    id PLS_INTEGER := g_log.FIRST;
  BEGIN
    WHILE id IS NOT NULL AND id <= g_written_id LOOP
      IF NOT g_log(id).answered THEN
        send_logged(id);
      END IF;
      id := g_log.NEXT(id);
    END LOOP;
    id := g_pending.FIRST;
    WHILE id IS NOT NULL AND id <= g_written_id LOOP
      IF g_pending(id).cancelled THEN
        g_cancel(id) := TRUE;
      END IF;
      id := g_pending.NEXT(id);
    END LOOP;
    send_ctl;
    flush_out;
  END resend;

  -- Connects to the first hub of the list that answers, starting with the last one used: one
  -- round over the list, each greeting bounded by deadline (NULL: 10 s). Raises refused if a
  -- hub refused the session, else not_connected.
  PROCEDURE connect_hub(deadline IN NUMBER DEFAULT NULL) IS
    errs    VARCHAR2(4000);
    refused PLS_INTEGER;
    code    PLS_INTEGER;
    msg     VARCHAR2(4000);
    i       PLS_INTEGER;
    hub_id  RAW(8);
  BEGIN
    IF g_connected THEN
      RETURN;
    END IF;
    IF g_hubs.COUNT = 0 THEN
      parse_hubs(g_hub_spec, g_hubs);
    END IF;
    IF g_session IS NULL THEN
      g_session := new_session_id;
    END IF;
    IF g_hub_index > g_hubs.COUNT THEN
      g_hub_index := 1;
    END IF;
    FOR k IN 0 .. g_hubs.COUNT - 1 LOOP
      i := MOD(g_hub_index - 1 + k, g_hubs.COUNT) + 1;
      BEGIN
        hub_id := greet(i, deadline);
        g_hub_index := i;
        adopt_hub(hub_id);
        resend;
        RETURN;
      EXCEPTION
        WHEN OTHERS THEN
          code := SQLCODE;
          msg := SQLERRM;
          IF NOT is_dco_error(code) THEN
            RAISE;
          END IF;
          close_quietly;
          IF code = -(error_base - e_refused) THEN
            refused := e_refused;
          END IF;
          errs := SUBSTR(errs || CASE WHEN errs IS NOT NULL THEN '; ' END ||
                         g_hubs(i).host || ':' || g_hubs(i).port || ': ' ||
                         REGEXP_REPLACE(msg, '^ORA-[0-9]+: ([A-Z_]+: )?', ''), 1, 1500);
      END;
    END LOOP;
    IF refused IS NOT NULL THEN
      fail(e_refused, errs);
    END IF;
    fail(e_not_connected, 'no hub reachable (' || errs || ')');
  END connect_hub;

  -- Connects (connect_hub), round after round over the hub list, until a hub answers or
  -- deadline (clock in centiseconds; NULL: none) passes: the pause before each round but a
  -- call's first is backoff centiseconds, cut to the time left, and doubles up to 1 s.
  -- backoff is the call's (0 before its first round), so that a connection lost again soon
  -- after is not made again at once. Once the deadline has passed a round fails for good:
  -- raises not_connected with the last round's words. Refused (or any failure that is not
  -- not_connected) is raised at once.
  PROCEDURE reconnect_until(deadline IN NUMBER, backoff IN OUT NUMBER) IS
    wait_cs NUMBER;
  BEGIN
    LOOP
      IF backoff > 0 THEN
        wait_cs := backoff;
        IF deadline IS NOT NULL THEN
          wait_cs := LEAST(wait_cs, GREATEST(deadline - now_cs, 0));
        END IF;
        pause_cs(wait_cs);
        backoff := LEAST(backoff * 2, c_backoff_cap_cs);
      ELSE
        backoff := c_backoff_first_cs;
      END IF;
      BEGIN
        connect_hub(deadline);
        RETURN;
      EXCEPTION
        WHEN OTHERS THEN
          IF SQLCODE <> -(error_base - e_not_connected)
             OR (deadline IS NOT NULL AND now_cs >= deadline) THEN
            RAISE;
          END IF;
      END;
    END LOOP;
  END reconnect_until;

  -- Writes the control frames, the DONE list and every request not yet written on this
  -- connection, then the CANCELs of those just written, connecting first (fixture:
  -- call_sync_1, flush_batch, one_way, no_route, call_queue). Sends them unless more is to
  -- follow (then the caller flushes).
  PROCEDURE write_log(and_flush IN BOOLEAN DEFAULT TRUE) IS
    id PLS_INTEGER;
  BEGIN
    connect_hub;
    send_ctl;
    id := g_log.NEXT(g_written_id);
    WHILE id IS NOT NULL LOOP
      send_logged(id);
      g_written_id := id;
      id := g_log.NEXT(id);
    END LOOP;
    send_cancels(g_written_id);
    IF and_flush THEN
      flush_out;
    END IF;
  END write_log;

  -- Tells the hub that the reply of id is not wanted any more: CANCEL, with the next write
  -- once the REQUEST of id is written (send_cancels), on this connection or the next.
  PROCEDURE queue_cancel(id IN PLS_INTEGER) IS
  BEGIN
    g_cancel(id) := TRUE;
  END queue_cancel;

  -- Drops acknowledged requests from the log.
  PROCEDURE trim_log IS
  BEGIN
    WHILE g_log.FIRST IS NOT NULL AND g_log.FIRST <= g_acked LOOP
      g_log.DELETE(g_log.FIRST);
    END LOOP;
  END trim_log;

  -- A reply was handed to the application: the hub may forget it (DONE with the next write).
  PROCEDURE consumed(id IN PLS_INTEGER) IS
  BEGIN
    g_done(id) := TRUE;
    IF g_done.COUNT >= c_done_batch AND g_connected THEN
      BEGIN
        send_ctl;
        flush_out;
      EXCEPTION
        WHEN OTHERS THEN
          -- The reply is the application's already; a lost DONE only means the hub sends
          -- the reply again after a reconnect, and it is told again then.
          IF NOT is_dco_error(SQLCODE) THEN
            RAISE;
          END IF;
      END;
    END IF;
  END consumed;

  -- Handles one frame from the hub (fixture: ack, reply; PINGs anywhere).
  PROCEDURE handle_frame IS
    kind  PLS_INTEGER;
    fields RAW(32);
    rest  bytes_t;
    id    NUMBER;
  BEGIN
    read_frame(kind, fields, rest);
    IF kind = t_reply THEN
      -- u64 id at 1, i32 status at 9, i32 rcode at 13, then the body.
      id := get_u64(fields, 1);
      IF id <= 2147483647 AND g_pending.EXISTS(id) THEN
        IF NOT g_pending(id).arrived THEN
          g_pending(id).arrived := TRUE;
          g_pending(id).status := get_i32(fields, 9);
          g_pending(id).rcode := get_i32(fields, 13);
          g_pending(id).body := rest;
          IF g_log.EXISTS(id) THEN
            g_log(id).answered := TRUE;
          END IF;
        ELSIF g_pending(id).cancelled THEN
          -- Cancelled: its outcome stays "cancelled"; the hub may forget the answer.
          g_done(id) := TRUE;
        END IF;
      ELSIF id <= 2147483647 THEN
        -- Read already, given up or one-way (or sent again after a reconnect): let the hub
        -- forget it.
        g_done(id) := TRUE;
      END IF;
    ELSIF kind = t_ack THEN
      -- u64 upto: every request up to it is accepted (journaled).
      id := get_u64(fields, 1);
      IF id > g_acked THEN
        g_acked := id;
        trim_log;
      END IF;
    ELSIF kind = t_ping THEN
      -- The hub does not require PONGs of callers: one answer (to the last PING) is enough.
      g_pong := pong_frame(fields);
    ELSIF kind = t_pong THEN
      NULL;
    ELSIF kind = t_queued THEN
      -- u64 id, u32 mode: the proxy's default parks the answer of a request sent without a
      -- mode. Version 2 only (this body says version 1 in HELLO), so never expected: skipped.
      NULL;
    ELSIF kind = t_refuse THEN
      lost(get_i32(fields, 1), 'refused by the hub: ' || text_of(rest));
    ELSIF kind = t_quit THEN
      -- The hub is shutting down: the next connection tries the next hub of the list.
      g_hub_index := MOD(g_hub_index, GREATEST(g_hubs.COUNT, 1)) + 1;
      lost(e_not_connected, 'hub quit: ' || text_of(rest));
    ELSE
      lost(e_protocol, 'unexpected frame of type ' || kind || ' from the hub');
    END IF;
  END handle_frame;

  -- Reads and handles frames until deadline (clock in centiseconds, NULL: none). Returns
  -- FALSE if the deadline passed with nothing read, TRUE after handling what had arrived.
  -- Raises (the connection dropped, everything kept for a resend) when the hub is lost.
  FUNCTION pump(deadline IN NUMBER) RETURN BOOLEAN IS
    dead_at    NUMBER := g_last_rx + 3 * g_keepalive_ms / 10;
    wait_until NUMBER := dead_at;
    n          PLS_INTEGER;
  BEGIN
    IF NOT g_connected THEN
      fail(e_not_connected, 'not connected to a hub');
    END IF;
    IF deadline IS NOT NULL AND deadline < dead_at THEN
      wait_until := deadline;
    END IF;
    BEGIN
      n := UTL_TCP.AVAILABLE(g_conn, GREATEST(0, CEIL((wait_until - now_cs) / 100)));
    EXCEPTION
      WHEN OTHERS THEN
        lost(e_not_connected, SQLERRM);
    END;
    IF n = 0 THEN
      IF now_cs >= dead_at THEN
        lost(e_not_connected, 'the hub stopped answering (keep-alive expired)');
      END IF;
      RETURN FALSE;
    END IF;
    LOOP
      handle_frame;
      EXIT WHEN UTL_TCP.AVAILABLE(g_conn, 0) = 0;
    END LOOP;
    -- Answer PINGs, pass on CANCELs and a long DONE list.
    IF ctl_waiting OR g_done.COUNT >= c_done_batch THEN
      send_ctl;
      flush_out;
    END IF;
    RETURN TRUE;
  END pump;

  -- Waits until deadline (clock in centiseconds; NULL: none) for the outcome of request id.
  -- Returns when it arrived as a success (left in g_pending); a failure outcome (cancelled
  -- included) is released and raised. Rides through a lost connection: it is made again
  -- (reconnect_until, with backoff, to the same hub or the next) and what the hub has not
  -- acknowledged is written again, until the deadline; not_connected only when no hub
  -- answered by then (or the connection made after the deadline was lost too).
  PROCEDURE await_reply(id IN PLS_INTEGER, deadline IN NUMBER) IS
    backoff NUMBER := 0;
    status  PLS_INTEGER;
    msg     VARCHAR2(1000);
  BEGIN
    LOOP
      IF id IS NULL OR NOT g_pending.EXISTS(id) THEN
        fail(e_unknown_id, 'request ' || id || ' is not outstanding in this session ' ||
                           '(never sent, one-way, already read, given up or cancelled)');
      END IF;
      IF g_pending(id).arrived THEN
        IF g_pending(id).status = 0 THEN
          RETURN;
        END IF;
        status := g_pending(id).status;
        g_last_rcode := g_pending(id).rcode;
        msg := text_of(g_pending(id).body);
        g_pending.DELETE(id);
        consumed(id);
        fail(status, msg);
      END IF;
      IF NOT g_connected THEN
        -- A lost connection is made again (resend writes what the hub has not acknowledged);
        -- raises not_connected when no hub answered by the deadline.
        reconnect_until(deadline, backoff);
      END IF;
      BEGIN
        IF id > g_written_id THEN
          -- Reading a buffered request sends it.
          write_log;
        ELSIF ctl_waiting THEN
          send_ctl;
          flush_out;
        END IF;
        IF NOT pump(deadline) THEN
          fail(e_timeout, 'no reply to request ' || id || ' within the timeout');
        END IF;
      EXCEPTION
        WHEN OTHERS THEN
          -- Lost (not_connected, the connection closed): back to the top, which makes it
          -- again. Past the deadline only if this call has not tried to connect yet.
          IF SQLCODE <> -(error_base - e_not_connected)
             OR (deadline IS NOT NULL AND now_cs >= deadline AND backoff > 0) THEN
            RAISE;
          END IF;
      END;
    END LOOP;
  END await_reply;

  -- Copies the arrived reply of id into reply and releases it.
  PROCEDURE deliver(id IN PLS_INTEGER, reply IN OUT NOCOPY BLOB) IS
  BEGIN
    IF reply IS NULL THEN
      DBMS_LOB.CREATETEMPORARY(reply, TRUE, DBMS_LOB.SESSION);
    ELSE
      DBMS_LOB.TRIM(reply, 0);
    END IF;
    FOR k IN 1 .. g_pending(id).body.parts.COUNT LOOP
      DBMS_LOB.WRITEAPPEND(reply, UTL_RAW.LENGTH(g_pending(id).body.parts(k)),
                           g_pending(id).body.parts(k));
    END LOOP;
    g_last_rcode := g_pending(id).rcode;
    g_pending.DELETE(id);
    consumed(id);
  END deliver;

  -- REQUEST's timeout_ms for a call's timeout (ms; NULL or negative: none, sent as 0; 0, only
  -- a look, sent as 1 ms as the Rust library does).
  FUNCTION wire_timeout(timeout IN PLS_INTEGER) RETURN NUMBER IS
  BEGIN
    IF timeout IS NULL OR timeout < 0 THEN
      RETURN 0;
    END IF;
    RETURN GREATEST(timeout, 1);
  END wire_timeout;

  -- Finishes the body and takes it as request of the session: written now unless buffered.
  -- req_flags (REQUEST flags besides one-way) and timeout_ms go in the REQUEST as they are.
  -- Not buffered, it needs a connection first: with ride (call_sync, call) it connects with
  -- reconnect_until(deadline), else (send_request) it tries the hub list once; no hub: raises
  -- not_connected, the request is not taken and the body is kept.
  -- (fixture: call_service) With by_name, the request names service instead of a proxy:
  -- REQUEST flag 32, proxy -1, and the body starts with the name (one byte of length, then
  -- the name's bytes); the hub resolves it through its routes.
  FUNCTION submit(proxy_id   IN PLS_INTEGER,
                  buffered   IN BOOLEAN,
                  oneway     IN BOOLEAN,
                  req_flags  IN PLS_INTEGER DEFAULT 0,
                  timeout_ms IN NUMBER DEFAULT 0,
                  ride       IN BOOLEAN DEFAULT FALSE,
                  deadline   IN NUMBER DEFAULT NULL,
                  by_name    IN BOOLEAN DEFAULT FALSE,
                  service    IN VARCHAR2 DEFAULT NULL)
    RETURN PLS_INTEGER IS
    id      PLS_INTEGER;
    e       logged_t;
    p       pending_t;
    backoff NUMBER := 0;
    c       PLS_INTEGER;
  BEGIN
    g_last_error := NULL;
    IF by_name THEN
      IF service IS NULL THEN
        fail(e_invalid, 'the service name is NULL');
      END IF;
      IF LENGTHB(service) > 255 THEN
        fail(e_invalid, 'a service name is at most 255 bytes, not ' || LENGTHB(service));
      END IF;
      FOR i IN 1 .. LENGTH(service) LOOP
        c := ASCII(SUBSTR(service, i, 1));
        IF c < 33 OR c > 126 THEN
          fail(e_invalid, '"' || SUBSTRB(service, 1, 255) || '" cannot be a service name ' ||
                          '(printable ASCII characters, no spaces)');
        END IF;
      END LOOP;
      IF NVL(g_body.len, 0) + 1 + LENGTHB(service) > g_max_frame - 20 THEN
        fail(e_too_large, 'the body and the service name would be over the hub''s limit of ' ||
                          (g_max_frame - 20) || ' bytes');
      END IF;
    ELSIF proxy_id IS NULL OR proxy_id < 0 THEN
      fail(e_invalid, 'proxy id must not be negative');
    END IF;
    IF NOT oneway AND g_pending.COUNT >= g_quota THEN
      fail(e_busy, g_pending.COUNT || ' requests outstanding, the quota is ' || g_quota ||
                   ': read some replies first');
    END IF;
    IF NOT buffered AND ride THEN
      reconnect_until(deadline, backoff);
    ELSIF NOT buffered THEN
      connect_hub;
    END IF;
    id := g_next_id;
    g_next_id := g_next_id + 1;
    e.proxy := proxy_id;
    e.flags := CASE WHEN oneway THEN req_oneway ELSE NVL(req_flags, 0) END;
    e.timeout_ms := NVL(timeout_ms, 0);
    IF by_name THEN
      e.proxy := -1;
      e.flags := e.flags + req_service;
      e.body.len := 0;
      append(e.body, UTL_RAW.CONCAT(HEXTORAW(TO_CHAR(LENGTHB(service), 'FM0X')),
                                    UTL_RAW.CAST_TO_RAW(service)));
      FOR k IN 1 .. NVL(g_body.parts.COUNT, 0) LOOP
        append(e.body, g_body.parts(k));
      END LOOP;
    ELSE
      e.body := g_body;
    END IF;
    e.body.len := NVL(e.body.len, 0);
    e.answered := FALSE;
    g_log(id) := e;
    clear_bytes(g_body);
    IF NOT oneway THEN
      p.arrived := FALSE;
      p.body.len := 0;
      p.cancelled := FALSE;
      g_pending(id) := p;
    END IF;
    g_last_id := id;
    IF NOT buffered THEN
      BEGIN
        write_log;
      EXCEPTION
        WHEN OTHERS THEN
          -- Kept in the log whatever happens: it goes with the next write or reconnect.
          IF NOT is_dco_error(SQLCODE) THEN
            RAISE;
          END IF;
      END;
    END IF;
    RETURN id;
  END submit;

  ----------------------------------------------------------------------------------------------
  -- The API

  PROCEDURE write(data IN RAW) IS
    n PLS_INTEGER := NVL(UTL_RAW.LENGTH(data), 0);
  BEGIN
    g_last_error := NULL;
    IF NVL(g_body.len, 0) + n > g_max_frame - 20 THEN
      fail(e_too_large, 'the body would be over the hub''s limit of ' || (g_max_frame - 20) ||
                        ' bytes');
    END IF;
    append(g_body, data);
  END write;

  PROCEDURE line(text IN VARCHAR2) IS
  BEGIN
    IF text IS NULL THEN
      write(HEXTORAW('0A'));
    ELSIF LENGTHB(text) < c_chunk THEN
      write(UTL_RAW.CONCAT(UTL_RAW.CAST_TO_RAW(text), HEXTORAW('0A')));
    ELSE
      write(UTL_RAW.CAST_TO_RAW(text));
      write(HEXTORAW('0A'));
    END IF;
  END line;

  FUNCTION send_request(proxy_id IN PLS_INTEGER, buffered IN BOOLEAN DEFAULT FALSE)
    RETURN PLS_INTEGER IS
  BEGIN
    RETURN submit(proxy_id, NVL(buffered, FALSE), FALSE);
  END send_request;

  PROCEDURE send_request(proxy_id IN PLS_INTEGER, buffered IN BOOLEAN DEFAULT FALSE) IS
    id PLS_INTEGER;
  BEGIN
    id := submit(proxy_id, NVL(buffered, FALSE), TRUE);
  END send_request;

  FUNCTION send_request(service IN VARCHAR2, buffered IN BOOLEAN DEFAULT FALSE)
    RETURN PLS_INTEGER IS
  BEGIN
    RETURN submit(NULL, NVL(buffered, FALSE), FALSE, by_name => TRUE, service => service);
  END send_request;

  PROCEDURE send_request(service IN VARCHAR2, buffered IN BOOLEAN DEFAULT FALSE) IS
    id PLS_INTEGER;
  BEGIN
    id := submit(NULL, NVL(buffered, FALSE), TRUE, by_name => TRUE, service => service);
  END send_request;

  -- (fixture: flush_batch, then ack) Writes the batch and a PING in one write, then reads
  -- until the hub's ACK covers the last request. Rides through a lost connection for 10 s
  -- as await_reply does (after a reconnect, the batch and the PING go again).
  PROCEDURE flush IS
    target   PLS_INTEGER := g_next_id - 1;
    deadline NUMBER := now_cs + c_flush_wait_cs;
    asked    BOOLEAN := FALSE;
    backoff  NUMBER := 0;
  BEGIN
    g_last_error := NULL;
    WHILE g_acked < target LOOP
      IF NOT g_connected THEN
        reconnect_until(deadline, backoff);
        asked := FALSE;
      END IF;
      BEGIN
        IF NOT asked THEN
          write_log(FALSE);
          send_out(ping_frame(target));
          flush_out;
          asked := TRUE;
        END IF;
        IF NOT pump(deadline) THEN
          fail(e_timeout, 'the hub did not acknowledge the batch in time (it is kept and ' ||
                          'will be sent again)');
        END IF;
      EXCEPTION
        WHEN OTHERS THEN
          -- Lost: made again at the top (past the deadline only if not tried yet).
          IF SQLCODE <> -(error_base - e_not_connected)
             OR (now_cs >= deadline AND backoff > 0) THEN
            RAISE;
          END IF;
      END;
    END LOOP;
  END flush;

  PROCEDURE read_request(
    req_id  IN PLS_INTEGER,
    reply   IN OUT NOCOPY BLOB,
    timeout IN PLS_INTEGER DEFAULT NULL) IS
  BEGIN
    g_last_error := NULL;
    await_reply(req_id, deadline_of(timeout));
    deliver(req_id, reply);
  END read_request;

  -- call_sync and call (fixture: call_sync_1, no_route, call_queue): sends the body now with
  -- the timeout in the REQUEST (and flags 4 when park) and waits for the outcome. One
  -- deadline for the whole call: connecting (riding through a hub restart) and waiting. No
  -- hub reachable by then before the request was sent: not_connected, nothing taken. When the
  -- wait ends without the outcome (the request still pending): park, and the timeout passed
  -- or no hub could be reached, raises queued and keeps the request (its answer is parked
  -- for read_request; it is sent again on the next connection if need be); else a timeout or
  -- not_connected gives the request up (CANCEL; its late reply is dropped).
  PROCEDURE call_now(
    proxy_id IN PLS_INTEGER,
    reply    IN OUT NOCOPY BLOB,
    timeout  IN PLS_INTEGER,
    park     IN BOOLEAN,
    by_name  IN BOOLEAN DEFAULT FALSE,
    service  IN VARCHAR2 DEFAULT NULL) IS
    id       PLS_INTEGER;
    code     PLS_INTEGER;
    deadline NUMBER := deadline_of(timeout);
  BEGIN
    id := submit(proxy_id, FALSE, FALSE,
                 CASE WHEN park THEN req_queue_on_timeout ELSE 0 END, wire_timeout(timeout),
                 TRUE, deadline, by_name, service);
    BEGIN
      await_reply(id, deadline);
    EXCEPTION
      WHEN OTHERS THEN
        code := SQLCODE;
        IF g_pending.EXISTS(id) THEN
          IF park AND code IN (-(error_base - e_timeout), -(error_base - e_not_connected)) THEN
            fail(e_queued, 'request ' || id || ' goes on without the caller (' ||
                           REGEXP_REPLACE(g_last_error, '^[A-Z_]+: ', '') ||
                           '); read its answer later with dco.read_request(' || id || ', ...)');
          ELSIF code IN (-(error_base - e_timeout), -(error_base - e_not_connected)) THEN
            -- Sync: the call is over, and so is the request (the hub also expires it at its
            -- deadline). Given up: its late reply is dropped.
            g_pending.DELETE(id);
            queue_cancel(id);
          END IF;
        END IF;
        RAISE;
    END;
    deliver(id, reply);
  END call_now;

  PROCEDURE call_sync(
    proxy_id IN PLS_INTEGER,
    reply    IN OUT NOCOPY BLOB,
    timeout  IN PLS_INTEGER DEFAULT NULL) IS
  BEGIN
    call_now(proxy_id, reply, timeout, FALSE);
  END call_sync;

  PROCEDURE call(
    proxy_id         IN PLS_INTEGER,
    reply            IN OUT NOCOPY BLOB,
    timeout          IN PLS_INTEGER DEFAULT NULL,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) IS
  BEGIN
    call_now(proxy_id, reply, timeout, NVL(queue_on_timeout, FALSE));
  END call;

  PROCEDURE call(
    service          IN VARCHAR2,
    reply            IN OUT NOCOPY BLOB,
    timeout          IN PLS_INTEGER DEFAULT NULL,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE) IS
  BEGIN
    call_now(NULL, reply, timeout, NVL(queue_on_timeout, FALSE), TRUE, service);
  END call;

  FUNCTION last_rcode RETURN PLS_INTEGER IS
  BEGIN
    RETURN g_last_rcode;
  END last_rcode;

  FUNCTION last_request_id RETURN PLS_INTEGER IS
  BEGIN
    RETURN g_last_id;
  END last_request_id;

  FUNCTION last_error RETURN VARCHAR2 IS
  BEGIN
    RETURN g_last_error;
  END last_error;

  -- The outcome of req_id becomes "cancelled", raised (cancelled) by its next read, which
  -- releases it. Not answered yet, the hub is told (CANCEL, after the REQUEST: a buffered
  -- request is still written, and its CANCEL follows it); an answer that had arrived is
  -- dropped (DONE). A request not outstanding, or cancelled already: unknown_id.
  PROCEDURE cancel(req_id IN PLS_INTEGER) IS
  BEGIN
    g_last_error := NULL;
    IF req_id IS NULL OR NOT g_pending.EXISTS(req_id) THEN
      fail(e_unknown_id, 'request ' || req_id || ' is not outstanding in this session');
    END IF;
    IF g_pending(req_id).cancelled THEN
      fail(e_unknown_id, 'request ' || req_id || ' is already cancelled');
    END IF;
    IF g_pending(req_id).arrived THEN
      g_done(req_id) := TRUE;
    ELSE
      queue_cancel(req_id);
    END IF;
    g_pending(req_id).arrived := TRUE;
    g_pending(req_id).status := e_cancelled;
    g_pending(req_id).rcode := 0;
    g_pending(req_id).cancelled := TRUE;
    clear_bytes(g_pending(req_id).body);
    append(g_pending(req_id).body, UTL_RAW.CAST_TO_RAW('cancelled by the caller'));
  END cancel;

  PROCEDURE set_hubs(hubs IN VARCHAR2, secret IN VARCHAR2 DEFAULT NULL) IS
    parsed hub_list;
  BEGIN
    g_last_error := NULL;
    parse_hubs(hubs, parsed);
    g_hub_spec := hubs;
    g_hubs := parsed;
    g_hub_index := 1;
    g_secret := UTL_RAW.CAST_TO_RAW(secret);
  END set_hubs;

  -- (fixture: close) Writes the DONE list, closes, and starts afresh.
  PROCEDURE close IS
  BEGIN
    g_last_error := NULL;
    IF g_connected THEN
      BEGIN
        send_ctl;
        flush_out;
      EXCEPTION
        WHEN OTHERS THEN
          NULL;
      END;
    END IF;
    close_quietly;
    g_session := NULL;
    g_hub_id := NULL;
    g_next_id := 1;
    g_written_id := 0;
    g_acked := 0;
    clear_bytes(g_body);
    g_log.DELETE;
    g_pending.DELETE;
    g_done.DELETE;
    g_cancel.DELETE;
    g_last_id := 0;
    g_last_rcode := 0;
  END close;

BEGIN
  g_body.len := 0;
END dco;
/
