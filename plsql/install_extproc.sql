-- Installs dco with the extproc body in the current schema.
--
--   sqlplus app/secret@db @install_extproc.sql
--
-- asks for the path of libdco.so on the database host (or DEFINE libdco_path first):
--
--   DEFINE libdco_path = /opt/dco/lib/libdco.so
--   @install_extproc.sql
--
-- Needs CREATE LIBRARY and CREATE PROCEDURE; the library must be allowed by EXTPROC_DLLS in
-- extproc.ora, and DCO_HUB set there for the agent. docs/ORACLE.md has the steps.
WHENEVER SQLERROR EXIT FAILURE
SET VERIFY OFF
SET FEEDBACK ON

PROMPT Library dco_lib for &&libdco_path
CREATE OR REPLACE LIBRARY dco_lib AS '&&libdco_path';
/

PROMPT Package dco (specification)
@@dco.pks
PROMPT Package dco (body over extproc)
@@dco_extproc.pkb
PROMPT Package dco_pdu
@@dco_pdu.pks
@@dco_pdu.pkb
PROMPT Package dco_http
@@dco_http.pks
@@dco_http.pkb

@@check_install.sql
