-- Removes dco from the current schema: the packages dco_http, dco_pdu and dco and the library
-- dco_lib (whichever exist; either body).
--
--   sqlplus app/secret@db @uninstall.sql
WHENEVER SQLERROR EXIT FAILURE
SET SERVEROUTPUT ON
DECLARE
  no_such_object EXCEPTION;
  PRAGMA EXCEPTION_INIT(no_such_object, -4043);

  PROCEDURE drop_object(what IN VARCHAR2) IS
  BEGIN
    EXECUTE IMMEDIATE 'DROP ' || what;
    DBMS_OUTPUT.PUT_LINE('dropped ' || what);
  EXCEPTION
    WHEN no_such_object THEN
      DBMS_OUTPUT.PUT_LINE(what || ' was not there');
  END drop_object;
BEGIN
  drop_object('PACKAGE dco_http');
  drop_object('PACKAGE dco_pdu');
  drop_object('PACKAGE dco');
  drop_object('LIBRARY dco_lib');
END;
/
