CREATE OR REPLACE PACKAGE dco_pdu AUTHID DEFINER AS
  /*
   * dco_pdu: reads a reply BLOB (the original DCO's package pdu). A cursor moves over the
   * reply as values are read:
   *
   *   dco.call_sync(5, reply, 3000);
   *   dco_pdu.init(reply);
   *   n    := dco_pdu.get_int;          -- 4 bytes, big-endian, signed
   *   name := dco_pdu.get_varchar2(n);  -- n bytes of text
   *   WHILE NOT dco_pdu.eof LOOP
   *     dbms_output.put_line(dco_pdu.get_line);
   *   END LOOP;
   *
   * Text is taken as bytes of the database character set (use get_raw and UTL_I18N for
   * another). Reading past the end raises end_of_reply; nothing is consumed then.
   */

  -- ORA-20120: a read would go past the end of the reply.
  end_of_reply EXCEPTION;
  PRAGMA EXCEPTION_INIT(end_of_reply, -20120);
  -- ORA-20121: a single value longer than 32767 bytes (read it with get_rest).
  too_long EXCEPTION;
  PRAGMA EXCEPTION_INIT(too_long, -20121);

  -- Starts reading reply (NULL reads as empty) at its first byte.
  PROCEDURE init(reply IN BLOB);

  -- Bytes read so far (0 after init).
  FUNCTION position RETURN PLS_INTEGER;

  -- Bytes left to read.
  FUNCTION remaining RETURN PLS_INTEGER;

  -- Whether every byte has been read.
  FUNCTION eof RETURN BOOLEAN;

  -- Skips n bytes.
  PROCEDURE skip(n IN PLS_INTEGER);

  -- A 4-byte big-endian signed integer.
  FUNCTION get_int RETURN PLS_INTEGER;

  -- A 4-byte big-endian unsigned integer (0 .. 4294967295).
  FUNCTION get_uint RETURN NUMBER;

  -- An 8-byte big-endian signed integer.
  FUNCTION get_bigint RETURN NUMBER;

  -- An 8-byte big-endian IEEE 754 double.
  FUNCTION get_double RETURN BINARY_DOUBLE;

  -- A number written as text ('-12.5', '3e4'; '.' as decimal point whatever the session's
  -- NLS settings): n bytes, or up to the end of the line (the newline is consumed) when n is
  -- NULL. An empty field is NULL; text that is not a number raises VALUE_ERROR.
  FUNCTION get_number(n IN PLS_INTEGER DEFAULT NULL) RETURN NUMBER;

  -- The next n bytes (at most 32767; NULL when n is 0).
  FUNCTION get_raw(n IN PLS_INTEGER) RETURN RAW;

  -- The next n bytes as text (n at most 32767).
  FUNCTION get_varchar2(n IN PLS_INTEGER) RETURN VARCHAR2;

  -- The text up to the next newline (LF; a CR before it is dropped), without the newline; the
  -- rest of the reply when no newline follows. At the end of the reply raises end_of_reply.
  FUNCTION get_line RETURN VARCHAR2;

  -- Everything not read yet, as a BLOB (a temporary copy, for the caller to free with
  -- DBMS_LOB.FREETEMPORARY) and the cursor at the end.
  FUNCTION get_rest RETURN BLOB;
END dco_pdu;
/
