CREATE OR REPLACE PACKAGE BODY dco_pdu AS
  g_reply BLOB;
  g_pos   PLS_INTEGER := 0;    -- bytes read
  g_len   PLS_INTEGER := 0;    -- bytes in the reply

  PROCEDURE need(n IN PLS_INTEGER) IS
  BEGIN
    IF n IS NULL OR n < 0 THEN
      RAISE VALUE_ERROR;
    END IF;
    IF g_pos + n > g_len THEN
      RAISE_APPLICATION_ERROR(-20120, 'dco_pdu: ' || n || ' bytes wanted at byte ' || g_pos ||
                                      ' of a reply of ' || g_len || ' bytes');
    END IF;
  END need;

  -- Reads n bytes (n <= 32767) and moves the cursor past them.
  FUNCTION take(n IN PLS_INTEGER) RETURN RAW IS
    amount PLS_INTEGER := n;
    buf    RAW(32767);
  BEGIN
    need(n);
    IF n = 0 THEN
      RETURN NULL;
    ELSIF n > 32767 THEN
      RAISE_APPLICATION_ERROR(-20121, 'dco_pdu: ' || n || ' bytes do not fit a RAW or a ' ||
                                      'VARCHAR2 (at most 32767): use get_rest');
    END IF;
    DBMS_LOB.READ(g_reply, amount, g_pos + 1, buf);
    g_pos := g_pos + n;
    RETURN buf;
  END take;

  PROCEDURE init(reply IN BLOB) IS
  BEGIN
    g_reply := reply;
    g_pos := 0;
    g_len := NVL(DBMS_LOB.GETLENGTH(reply), 0);
  END init;

  FUNCTION position RETURN PLS_INTEGER IS
  BEGIN
    RETURN g_pos;
  END position;

  FUNCTION remaining RETURN PLS_INTEGER IS
  BEGIN
    RETURN g_len - g_pos;
  END remaining;

  FUNCTION eof RETURN BOOLEAN IS
  BEGIN
    RETURN g_pos >= g_len;
  END eof;

  PROCEDURE skip(n IN PLS_INTEGER) IS
  BEGIN
    need(n);
    g_pos := g_pos + n;
  END skip;

  FUNCTION get_int RETURN PLS_INTEGER IS
  BEGIN
    RETURN UTL_RAW.CAST_TO_BINARY_INTEGER(take(4), UTL_RAW.BIG_ENDIAN);
  END get_int;

  FUNCTION get_uint RETURN NUMBER IS
    v NUMBER := get_int;
  BEGIN
    IF v < 0 THEN
      v := v + 4294967296;
    END IF;
    RETURN v;
  END get_uint;

  FUNCTION get_bigint RETURN NUMBER IS
    hi NUMBER := get_int;
    lo NUMBER := get_uint;
  BEGIN
    RETURN hi * 4294967296 + lo;
  END get_bigint;

  FUNCTION get_double RETURN BINARY_DOUBLE IS
  BEGIN
    RETURN UTL_RAW.CAST_TO_BINARY_DOUBLE(take(8), UTL_RAW.BIG_ENDIAN);
  END get_double;

  FUNCTION get_raw(n IN PLS_INTEGER) RETURN RAW IS
  BEGIN
    RETURN take(n);
  END get_raw;

  FUNCTION get_varchar2(n IN PLS_INTEGER) RETURN VARCHAR2 IS
  BEGIN
    RETURN UTL_RAW.CAST_TO_VARCHAR2(take(n));
  END get_varchar2;

  FUNCTION get_line RETURN VARCHAR2 IS
    nl   PLS_INTEGER;
    n    PLS_INTEGER;
    text RAW(32767);
  BEGIN
    IF g_pos >= g_len THEN
      need(1);
    END IF;
    nl := DBMS_LOB.INSTR(g_reply, HEXTORAW('0A'), g_pos + 1, 1);
    IF nl IS NULL OR nl = 0 THEN
      n := g_len - g_pos;
    ELSE
      n := nl - 1 - g_pos;
    END IF;
    text := take(n);
    IF nl > 0 THEN
      g_pos := g_pos + 1;
    END IF;
    IF n > 0 AND UTL_RAW.SUBSTR(text, n, 1) = HEXTORAW('0D') THEN
      IF n = 1 THEN
        RETURN NULL;
      END IF;
      text := UTL_RAW.SUBSTR(text, 1, n - 1);
    END IF;
    RETURN UTL_RAW.CAST_TO_VARCHAR2(text);
  END get_line;

  FUNCTION get_number(n IN PLS_INTEGER DEFAULT NULL) RETURN NUMBER IS
    text VARCHAR2(32767);
  BEGIN
    IF n IS NULL THEN
      text := get_line;
    ELSE
      text := get_varchar2(n);
    END IF;
    text := TRIM(text);
    IF text IS NULL THEN
      RETURN NULL;
    END IF;
    -- '.' on the wire; TO_NUMBER wants the session's decimal character.
    RETURN TO_NUMBER(REPLACE(text, '.', SUBSTR(TO_CHAR(1.5), 2, 1)));
  END get_number;

  FUNCTION get_rest RETURN BLOB IS
    r BLOB;
    n PLS_INTEGER := g_len - g_pos;
  BEGIN
    DBMS_LOB.CREATETEMPORARY(r, TRUE, DBMS_LOB.SESSION);
    IF n > 0 THEN
      DBMS_LOB.COPY(r, g_reply, n, 1, g_pos + 1);
    END IF;
    g_pos := g_len;
    RETURN r;
  END get_rest;
END dco_pdu;
/
