#!/usr/bin/env bash
# Starts Oracle XE (the gvenzl/oracle-xe image) in docker or podman, prepares a schema for dco's
# UTL_TCP body (CREATE PROCEDURE, EXECUTE on UTL_TCP, a network ACL to reach the hub), and
# prints what tests/oracle_xe.rs needs:
#
#   scripts/oracle-xe.sh
#   export DCO_ORACLE_URL=... DCO_ORACLE_HUB=...      # as printed
#   cargo test --features oracle-tests --test oracle_xe -- --ignored --nocapture
#
# The test runs on this machine and needs Oracle Instant Client here (the `oracle` crate loads
# libclntsh.so at run time). Settings, all optional:
#   DCO_CONTAINER_ENGINE  docker or podman (default: whichever is installed, podman first)
#   DCO_XE_IMAGE          image (default gvenzl/oracle-xe:21-slim)
#   DCO_XE_NAME           container name (default dco-oracle-xe)
#   DCO_XE_PORT           host port for the listener (default 1521)
#   DCO_XE_PASSWORD       password of SYS/SYSTEM and of the test user (default dco_Test_1)
#   DCO_HUB_PORT          port the test's hub listens on, on this machine (default 17790)
# Stop it with: docker rm -f dco-oracle-xe (or podman).
set -euo pipefail

engine=${DCO_CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman
  elif command -v docker >/dev/null 2>&1; then engine=docker
  else
    echo "oracle-xe.sh: neither podman nor docker is installed here, so Oracle XE cannot run" >&2
    echo "on this machine; tests/oracle_xe.rs stays ignored (cargo test lists it so)." >&2
    exit 1
  fi
fi
image=${DCO_XE_IMAGE:-gvenzl/oracle-xe:21-slim}
name=${DCO_XE_NAME:-dco-oracle-xe}
port=${DCO_XE_PORT:-1521}
password=${DCO_XE_PASSWORD:-dco_Test_1}
hub_port=${DCO_HUB_PORT:-17790}
user=DCO_TEST

# How the database, inside the container, reaches this machine.
if [ "$engine" = podman ]; then
  host_alias=host.containers.internal
  add_host=()
else
  host_alias=host.docker.internal
  add_host=(--add-host=host.docker.internal:host-gateway)
fi

if "$engine" ps -a --format '{{.Names}}' | grep -qx "$name"; then
  echo "oracle-xe.sh: container $name exists; starting it if stopped" >&2
  "$engine" start "$name" >/dev/null
else
  "$engine" run -d --name "$name" -p "$port:1521" ${add_host[@]+"${add_host[@]}"} \
    -e ORACLE_PASSWORD="$password" \
    -e APP_USER="$user" -e APP_USER_PASSWORD="$password" \
    "$image" >/dev/null
fi

echo "oracle-xe.sh: waiting for the database (the first start takes minutes)..." >&2
for _ in $(seq 1 180); do
  if "$engine" logs "$name" 2>&1 | grep -q "DATABASE IS READY TO USE"; then
    ready=1
    break
  fi
  if ! "$engine" ps --format '{{.Names}}' | grep -qx "$name"; then
    "$engine" logs "$name" >&2 || true
    echo "oracle-xe.sh: the container stopped" >&2
    exit 1
  fi
  sleep 5
done
if [ -z "${ready:-}" ]; then
  echo "oracle-xe.sh: the database did not become ready in 15 minutes" >&2
  exit 1
fi

# What dco's UTL_TCP body needs in the schema (docs/ORACLE.md explains each line).
"$engine" exec -i "$name" sqlplus -s / as sysdba <<SQL >&2
WHENEVER SQLERROR EXIT FAILURE
ALTER SESSION SET CONTAINER = XEPDB1;
GRANT CREATE SESSION, CREATE PROCEDURE TO $user;
GRANT EXECUTE ON SYS.UTL_TCP TO $user;
BEGIN
  DBMS_NETWORK_ACL_ADMIN.APPEND_HOST_ACE(
    host       => '$host_alias',
    lower_port => $hub_port,
    upper_port => $hub_port,
    ace        => xs\$ace_type(privilege_list => xs\$name_list('connect'),
                               principal_name => '$user',
                               principal_type => xs_acl.ptype_db));
END;
/
EXIT
SQL

cat <<EOF
# Oracle XE is up. For tests/oracle_xe.rs (needs Oracle Instant Client on this machine):
export DCO_ORACLE_URL='$user/$password@localhost:$port/XEPDB1'
export DCO_ORACLE_HUB='$host_alias:$hub_port'
export DCO_ORACLE_HUB_LISTEN='0.0.0.0:$hub_port'
# then: cargo test --features oracle-tests --test oracle_xe -- --ignored --nocapture
EOF
