CREATE OR REPLACE PACKAGE dco AUTHID DEFINER AS
  /*
   * dco: call services outside the database through a dco hub.
   *
   * The six calls of the original DCO, with the same names and shapes:
   *
   *   dco.line('GET /rates/EUR');                    -- build the body (text + newline)
   *   dco.write(hextoraw('0102'));                   -- ... or raw bytes
   *   dco.call_sync(5, reply, 3000);                 -- send to proxy 5, wait up to 3 s
   *
   *   id := dco.send_request(5, buffered => TRUE);   -- a batch: queued in the session
   *   dco.flush;                                     -- one write; returns once the hub has them
   *   dco.read_request(id, reply, 3000);             -- replies in any order
   *
   * and call: call_sync with a choice of what a timeout does (queue-on-timeout, below):
   *
   *   dco.call(5, reply, 3000, queue_on_timeout => TRUE);
   *
   * Two bodies implement this one specification; the DBA installs one of them:
   *   dco_extproc.pkb  calls libdco.so through extproc (install_extproc.sql);
   *   dco_utl_tcp.pkb  speaks the hub's protocol over UTL_TCP in pure PL/SQL
   *                    (install_utl_tcp.sql), for databases where extproc is not allowed.
   * Both keep one hub session per database session, for the life of the database session
   * (or until dco.close).
   *
   * Timeouts are in milliseconds; NULL (or a negative value) waits without limit, 0 only
   * looks. The UTL_TCP body waits in whole seconds (UTL_TCP.AVAILABLE counts seconds), so a
   * timeout of 200 ms may wait up to a second there.
   *
   * Every failure is raised as one of the exceptions below, ORA-(20100 - DCO_E_* code): the
   * same numbers as DCO_E_* in include/dco.h. SQLERRM carries the words (for a failed reply,
   * the text the hub or the worker gave).
   *
   * Queue-on-timeout: dco.call(..., queue_on_timeout => TRUE) that times out raises queued
   * instead of timeout, and the request goes on: its answer is parked in the session (and by
   * the hub) until read with read_request(last_request_id, reply, timeout):
   *
   *   BEGIN
   *     dco.call(5, reply, 3000, queue_on_timeout => TRUE);
   *   EXCEPTION
   *     WHEN dco.queued THEN
   *       id := dco.last_request_id;                  -- read it later:
   *   END;                                            -- dco.read_request(id, reply, 3000)
   */

  -- DCO_E_INVALID (-1): an argument was invalid (negative proxy id, bad hub list, ...).
  invalid EXCEPTION;
  PRAGMA EXCEPTION_INIT(invalid, -20101);
  -- DCO_E_TIMEOUT (-2): the timeout passed before the reply arrived. The request stays
  -- outstanding after read_request (read it again later); call_sync gives it up, and so
  -- does call without queue_on_timeout (with it, call raises queued instead).
  timeout EXCEPTION;
  PRAGMA EXCEPTION_INIT(timeout, -20102);
  -- DCO_E_NO_ROUTE (-3): no worker can serve this proxy id.
  no_route EXCEPTION;
  PRAGMA EXCEPTION_INIT(no_route, -20103);
  -- DCO_E_NOT_CONNECTED (-4): no hub of the list could be reached.
  not_connected EXCEPTION;
  PRAGMA EXCEPTION_INIT(not_connected, -20104);
  -- DCO_E_BUSY (-5): over quota (too many requests sent and not read) or the hub's journal
  -- is full.
  busy EXCEPTION;
  PRAGMA EXCEPTION_INIT(busy, -20105);
  -- DCO_E_UNKNOWN_ID (-6): no request with this id is outstanding in this session (never
  -- sent, one-way, already read, given up by call_sync or call, or cancelled and its
  -- cancelled outcome read), or cancel of a request cancelled already.
  unknown_id EXCEPTION;
  PRAGMA EXCEPTION_INIT(unknown_id, -20106);
  -- DCO_E_TOO_LARGE (-7): the body is larger than the hub's frame limit.
  too_large EXCEPTION;
  PRAGMA EXCEPTION_INIT(too_large, -20107);
  -- DCO_E_APP_FAIL (-8): the worker reported an application failure; last_rcode gives its
  -- return code and SQLERRM the reply's text.
  app_fail EXCEPTION;
  PRAGMA EXCEPTION_INIT(app_fail, -20108);
  -- DCO_E_SYSTEM (-9): the worker died and no other could take the request, or the request
  -- was accepted by a hub that is no longer reachable.
  system EXCEPTION;
  PRAGMA EXCEPTION_INIT(system, -20109);
  -- DCO_E_CANCELLED (-10): the request was cancelled (dco.cancel): its first read after it.
  cancelled EXCEPTION;
  PRAGMA EXCEPTION_INIT(cancelled, -20110);
  -- DCO_E_REFUSED (-11): the hub refused this session (wrong shared secret, not allowed).
  refused EXCEPTION;
  PRAGMA EXCEPTION_INIT(refused, -20111);
  -- DCO_E_PROTOCOL (-12): the hub sent bytes that are not the dco protocol.
  protocol EXCEPTION;
  PRAGMA EXCEPTION_INIT(protocol, -20112);
  -- DCO_E_PANIC (-13): an internal error of the library (a bug; please report it).
  internal EXCEPTION;
  PRAGMA EXCEPTION_INIT(internal, -20113);
  -- DCO_E_QUEUED (-14): accepted, the reply is not there yet: call with queue_on_timeout
  -- timed out, the request goes on and its answer is parked; read it with
  -- read_request(last_request_id, reply, timeout).
  queued EXCEPTION;
  PRAGMA EXCEPTION_INIT(queued, -20114);
  -- DCO_E_RETRY (-15): a worker asked for the request to be tried again later. The hub
  -- retries it; callers never see this code (after the last attempt they get system).
  retry EXCEPTION;
  PRAGMA EXCEPTION_INIT(retry, -20115);

  -- The PL/SQL error number of a DCO_E_* code is error_base - code (DCO_EXT_ERROR_BASE in dco.h).
  error_base CONSTANT PLS_INTEGER := 20100;

  -- Appends raw bytes to the request body being built (NULL appends nothing). A body longer
  -- than 32767 bytes is written in several calls.
  PROCEDURE write(data IN RAW);

  -- Appends a line of text (text + newline, LF) to the body being built; NULL appends only
  -- the newline. The text goes in the database character set (UTL_TCP body) or in the
  -- extproc agent's NLS_LANG character set (extproc body).
  PROCEDURE line(text IN VARCHAR2);

  -- Finishes the body and sends it to proxy_id. With buffered => TRUE it only joins the
  -- session's batch, sent by flush (or by the first read_request that needs it). Returns
  -- the request id, for read_request.
  FUNCTION send_request(proxy_id IN PLS_INTEGER, buffered IN BOOLEAN DEFAULT FALSE)
    RETURN PLS_INTEGER;

  -- One-way: finishes the body and sends it to proxy_id; no reply is wanted.
  PROCEDURE send_request(proxy_id IN PLS_INTEGER, buffered IN BOOLEAN DEFAULT FALSE);

  -- The same to a service, by name: send_request(service => 'sms.send'). The hub picks the
  -- proxy from its routes ([[route]] in its configuration) when it accepts the request and
  -- keeps it, so a later change of the route does not move the request. A service without a
  -- route raises no_route when the reply is read. A name is 1 to 255 printable ASCII
  -- characters without spaces (else invalid).
  FUNCTION send_request(service IN VARCHAR2, buffered IN BOOLEAN DEFAULT FALSE)
    RETURN PLS_INTEGER;

  -- One-way, to a service.
  PROCEDURE send_request(service IN VARCHAR2, buffered IN BOOLEAN DEFAULT FALSE);

  -- Sends every buffered request in one write and returns once the hub has accepted them all
  -- (journaled). Raises not_connected when no hub can be reached (the requests are kept and
  -- go with the next flush or read), timeout when the hub did not acknowledge within 10 s.
  PROCEDURE flush;

  -- Waits up to timeout ms for the reply of req_id and puts it into reply (created as a
  -- temporary BLOB when NULL, else overwritten). Replies may be read in any order. A reply
  -- read is released; reading it again raises unknown_id.
  PROCEDURE read_request(
    req_id  IN PLS_INTEGER,
    reply   IN OUT NOCOPY BLOB,
    timeout IN PLS_INTEGER DEFAULT NULL);

  -- Sends the body to proxy_id now and waits up to timeout ms for its reply, as read_request.
  -- On timeout the request is given up (its late reply is dropped).
  PROCEDURE call_sync(
    proxy_id IN PLS_INTEGER,
    reply    IN OUT NOCOPY BLOB,
    timeout  IN PLS_INTEGER DEFAULT NULL);

  -- Sends the body to proxy_id now and waits up to timeout ms for its reply, as call_sync.
  -- The timeout also goes to the hub, which keeps it as the deadline of a sync request.
  -- queue_on_timeout => FALSE: the proxy's default mode (sync unless the hub is set up
  -- otherwise): on timeout the request is given up and timeout raised, as call_sync does.
  -- queue_on_timeout => TRUE: on timeout the request is not given up: it goes on, queued is
  -- raised, and its answer is parked (in the session and by the hub, across reconnects and
  -- hub restarts): read it with read_request(last_request_id, reply, timeout).
  PROCEDURE call(
    proxy_id         IN PLS_INTEGER,
    reply            IN OUT NOCOPY BLOB,
    timeout          IN PLS_INTEGER DEFAULT NULL,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE);

  -- call to a service, by name (see send_request(service => ...)): no_route when the hub has
  -- no route for it.
  PROCEDURE call(
    service          IN VARCHAR2,
    reply            IN OUT NOCOPY BLOB,
    timeout          IN PLS_INTEGER DEFAULT NULL,
    queue_on_timeout IN BOOLEAN DEFAULT FALSE);

  -- The worker's return code for the last reply read: 0 after a success, the application's
  -- code after app_fail.
  FUNCTION last_rcode RETURN PLS_INTEGER;

  -- The id of the last request sent in this session (0 if none).
  FUNCTION last_request_id RETURN PLS_INTEGER;

  -- The last failure, in words (NULL if none).
  FUNCTION last_error RETURN VARCHAR2;

  -- Drops interest in req_id: its reply, parked or still to come, is discarded. The next
  -- read_request of req_id raises cancelled (once; after it, unknown_id); cancelling it again
  -- raises unknown_id.
  PROCEDURE cancel(req_id IN PLS_INTEGER);

  -- The hub list for this session: 'host:port,host:port' in failover order. UTL_TCP body
  -- only (default '127.0.0.1:7790'); the extproc body reads DCO_HUB from the agent's
  -- environment and raises invalid here. secret is the hub's shared secret, if it has one.
  -- Takes effect at the next connection (close first to move an open session).
  PROCEDURE set_hubs(hubs IN VARCHAR2, secret IN VARCHAR2 DEFAULT NULL);

  -- Ends the session: the hub is told which replies were read, outstanding requests are
  -- dropped, buffered ones discarded. The next call starts a new session.
  PROCEDURE close;
END dco;
/
