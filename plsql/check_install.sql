-- Part of install_extproc.sql and install_utl_tcp.sql: fails the install (through WHENEVER
-- SQLERROR) if a dco package did not compile, after listing the errors.
SET SERVEROUTPUT ON
DECLARE
  n PLS_INTEGER := 0;
BEGIN
  FOR e IN (SELECT name, type, line, position, text
              FROM user_errors
             WHERE name IN ('DCO', 'DCO_PDU', 'DCO_HTTP')
             ORDER BY name, type, sequence) LOOP
    DBMS_OUTPUT.PUT_LINE(e.type || ' ' || e.name || ' line ' || e.line || ':' ||
                         e.position || ' ' || e.text);
    n := n + 1;
  END LOOP;
  IF n > 0 THEN
    RAISE_APPLICATION_ERROR(-20000, 'dco did not compile: ' || n || ' errors (listed above)');
  END IF;
  DBMS_OUTPUT.PUT_LINE('dco installed');
END;
/
