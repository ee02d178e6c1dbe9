-- Installs dco with the UTL_TCP body (pure PL/SQL, no native code) in the current schema.
--
--   sqlplus app/secret@db @install_utl_tcp.sql
--
-- Needs CREATE PROCEDURE, EXECUTE on UTL_TCP, and a network ACL that lets the schema connect
-- to the hubs (DBMS_NETWORK_ACL_ADMIN.APPEND_HOST_ACE, privilege 'connect'). The hub list is
-- set per session with dco.set_hubs('host:port,host:port'); the default is 127.0.0.1:7790.
-- docs/ORACLE.md has the steps.
WHENEVER SQLERROR EXIT FAILURE
SET VERIFY OFF
SET FEEDBACK ON

PROMPT Package dco (specification)
@@dco.pks
PROMPT Package dco (body over UTL_TCP)
@@dco_utl_tcp.pkb
PROMPT Package dco_pdu
@@dco_pdu.pks
@@dco_pdu.pkb
PROMPT Package dco_http
@@dco_http.pks
@@dco_http.pkb

@@check_install.sql
