-- dco from PL/SQL, by example. Runs with SQL*Plus in a schema where dco is installed (either
-- body), against a hub with an echo worker serving proxy 5:
--
--   dco hub --listen 0.0.0.0:7790 --proxy-ids 6,7
--   dco worker echo --proxy 5 --hub 127.0.0.1:7790
--
-- Proxies 6 and 7 are known to the hub (--proxy-ids) but served by no worker here: a request
-- to 6 waits in the hub's journal (example 6 times out on it, and queues a call to it);
-- example 7 shows an application failure when a worker that fails serves proxy 7
-- (tests/oracle_xe.rs runs one), and a timeout otherwise. Example 8 calls a REST API through
-- the HTTP worker on proxy 30, when one serves it:
--
--   dco worker http --proxy 30 --base-url https://sms.example.com/v1 --hub 127.0.0.1:7790
--
-- With the UTL_TCP body, tell the session where the hub is first:
--   EXEC dco.set_hubs('hub.example.com:7790')
-- (the extproc body reads DCO_HUB from the agent's environment instead).
SET SERVEROUTPUT ON

PROMPT 1. call_sync: one request, wait up to 3 s for its reply
DECLARE
  reply BLOB;
BEGIN
  dco.line('hello from PL/SQL');
  dco.call_sync(5, reply, 3000);
  dco_pdu.init(reply);
  DBMS_OUTPUT.PUT_LINE('call_sync: ' || dco_pdu.get_line);
END;
/

PROMPT 2. A batch: 300 buffered requests, one flush, the replies read back in reverse
DECLARE
  TYPE id_list IS TABLE OF PLS_INTEGER INDEX BY PLS_INTEGER;
  ids   id_list;
  reply BLOB;
  wrong PLS_INTEGER := 0;
BEGIN
  FOR i IN 1 .. 300 LOOP
    dco.line('item ' || i);
    ids(i) := dco.send_request(5, buffered => TRUE);
  END LOOP;
  dco.flush;
  FOR i IN REVERSE 1 .. 300 LOOP
    dco.read_request(ids(i), reply, 3000);
    dco_pdu.init(reply);
    IF NVL(dco_pdu.get_line, '-') <> 'item ' || i THEN
      wrong := wrong + 1;
    END IF;
  END LOOP;
  DBMS_OUTPUT.PUT_LINE('batch: 300 replies read in reverse, ' || wrong || ' wrong');
END;
/

PROMPT 3. Binary bodies: write raw bytes, read them with dco_pdu
DECLARE
  reply BLOB;
  i     PLS_INTEGER;
  d     BINARY_DOUBLE;
  n     NUMBER;
  t     VARCHAR2(100);
BEGIN
  dco.write(UTL_RAW.CAST_FROM_BINARY_INTEGER(-42, UTL_RAW.BIG_ENDIAN));
  dco.write(UTL_RAW.CAST_FROM_BINARY_DOUBLE(2.5d, UTL_RAW.BIG_ENDIAN));
  dco.line('3.25');
  dco.line('end');
  dco.call_sync(5, reply, 3000);
  dco_pdu.init(reply);
  i := dco_pdu.get_int;
  d := dco_pdu.get_double;
  n := dco_pdu.get_number;
  t := dco_pdu.get_line;
  DBMS_OUTPUT.PUT_LINE('binary: ' || i || ' ' || TO_CHAR(d, 'FM0.0') || ' ' ||
                       TO_CHAR(n, 'FM0.00') || ' ' || t);
END;
/

PROMPT 4. A reply larger than 32767 bytes (read in chunks, assembled in the BLOB)
DECLARE
  reply BLOB;
  piece RAW(1000) := UTL_RAW.COPIES(HEXTORAW('41'), 1000);
BEGIN
  FOR i IN 1 .. 100 LOOP
    dco.write(piece);
  END LOOP;
  dco.call_sync(5, reply, 10000);
  DBMS_OUTPUT.PUT_LINE('large: ' || DBMS_LOB.GETLENGTH(reply) || ' bytes');
END;
/

PROMPT 5. One-way: the procedure form of send_request wants no reply
BEGIN
  dco.line('fire and forget');
  dco.send_request(5);
  DBMS_OUTPUT.PUT_LINE('one-way: sent as request ' || dco.last_request_id);
END;
/

PROMPT 6. Errors are exceptions of package dco
DECLARE
  reply BLOB;
  id    PLS_INTEGER;
BEGIN
  -- No worker has ever served proxy 999: the hub answers at once.
  BEGIN
    dco.line('anyone there?');
    dco.call_sync(999, reply, 3000);
  EXCEPTION
    WHEN dco.no_route THEN
      DBMS_OUTPUT.PUT_LINE('no_route: ' || SQLCODE);
  END;

  -- A reply is read once.
  dco.line('once');
  id := dco.send_request(5);
  dco.read_request(id, reply, 3000);
  BEGIN
    dco.read_request(id, reply, 3000);
  EXCEPTION
    WHEN dco.unknown_id THEN
      DBMS_OUTPUT.PUT_LINE('unknown_id: ' || SQLCODE);
  END;

  -- Nobody serves proxy 6 now: the request waits in the hub, read_request gives up after the
  -- timeout and the request stays outstanding until read or cancelled.
  dco.line('later');
  id := dco.send_request(6);
  BEGIN
    dco.read_request(id, reply, 200);
  EXCEPTION
    WHEN dco.timeout THEN
      DBMS_OUTPUT.PUT_LINE('timeout: ' || SQLCODE);
    WHEN dco.no_route THEN
      DBMS_OUTPUT.PUT_LINE('no_route (start the hub with --proxy-ids 6 to see a timeout)');
  END;
  BEGIN
    dco.cancel(id);
  EXCEPTION
    WHEN dco.unknown_id THEN
      NULL;
  END;

  -- call with queue_on_timeout: a timeout does not give the request up. dco.queued is raised,
  -- the request goes on, and its answer is parked until read_request(dco.last_request_id).
  -- Proxy 6 still has no worker, so that read times out too (the request stays outstanding);
  -- cancel drops it, and the next read says so, once (then the id is unknown).
  BEGIN
    dco.line('slow report');
    BEGIN
      dco.call(6, reply, 200, queue_on_timeout => TRUE);
    EXCEPTION
      WHEN dco.queued THEN
        DBMS_OUTPUT.PUT_LINE('queued: ' || SQLCODE);
        id := dco.last_request_id;      -- keep it: read the answer later with it
    END;
    BEGIN
      dco.read_request(id, reply, 200);
    EXCEPTION
      WHEN dco.timeout THEN
        DBMS_OUTPUT.PUT_LINE('still queued: ' || SQLCODE);
    END;
    dco.cancel(id);
    BEGIN
      dco.read_request(id, reply, 200);
    EXCEPTION
      WHEN dco.cancelled THEN
        DBMS_OUTPUT.PUT_LINE('cancelled: ' || SQLCODE);
    END;
  EXCEPTION
    WHEN dco.no_route THEN
      DBMS_OUTPUT.PUT_LINE('no_route (start the hub with --proxy-ids 6 to see queued)');
  END;
END;
/

PROMPT 7. One handler for every outcome; app_fail carries the worker's return code
DECLARE
  reply BLOB;
BEGIN
  dco.line('debit 100');
  dco.call_sync(7, reply, 2000);
  DBMS_OUTPUT.PUT_LINE('proxy 7 answered: ' || DBMS_LOB.GETLENGTH(reply) || ' bytes');
EXCEPTION
  WHEN dco.app_fail THEN
    DBMS_OUTPUT.PUT_LINE('app_fail: rcode ' || dco.last_rcode || ', ' || dco.last_error);
  WHEN dco.timeout OR dco.busy OR dco.not_connected THEN
    DBMS_OUTPUT.PUT_LINE('try again later: ' || SQLERRM);
  WHEN dco.no_route OR dco.system OR dco.refused THEN
    DBMS_OUTPUT.PUT_LINE('not served: ' || SQLERRM);
END;
/

PROMPT 8. REST: POST JSON to an HTTP service, then GET, through the HTTP worker (dco_http)
-- Each call is one HTTP request to the worker's base URL; its response comes back taken apart.
-- A 4xx is dco.app_fail, with the response in dco_http.last_response; 5xx and a service that
-- does not answer are retried by the hub, then dco.system (or dco.timeout at the deadline).
DECLARE
  r dco_http.response_t;
BEGIN
  r := dco_http.call_json(30, 'POST', '/sms', '{"to": "+15550100", "text": "hello"}',
                          timeout_ms => 5000);
  DBMS_OUTPUT.PUT_LINE('POST /sms: ' || r.status || ', at ' || dco_http.header(r, 'location'));
  r := dco_http.call(30, 'GET', '/sms?limit=1', timeout_ms => 5000);
  DBMS_OUTPUT.PUT_LINE('GET /sms: ' || r.status || ' ' ||
                       DBMS_LOB.SUBSTR(dco_http.body_text(r), 200, 1));
  dco_http.free_response(r);
EXCEPTION
  WHEN dco.app_fail THEN
    r := dco_http.last_response;
    DBMS_OUTPUT.PUT_LINE('rejected: HTTP ' || r.status || ' ' ||
                         DBMS_LOB.SUBSTR(dco_http.body_text(r), 200, 1));
  WHEN dco.no_route THEN
    DBMS_OUTPUT.PUT_LINE('no_route (start dco worker http --proxy 30 to call the service)');
  WHEN dco.timeout OR dco.system THEN
    DBMS_OUTPUT.PUT_LINE('service unavailable: ' || SQLERRM);
END;
/

PROMPT 9. close: end the hub session (the next call starts a new one)
BEGIN
  dco.close;
  DBMS_OUTPUT.PUT_LINE('closed');
END;
/
