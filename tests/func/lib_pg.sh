# PostgreSQL databases for the black-box tests, sourced by lib.sh: one
# database per test (or per use) in a PostgreSQL cluster the test did not
# start, by default the pg_cluster ctest fixture's (tests/tools/pg_cluster.sh)
# named by EVSREP_TEST_PG_URL or by the file EVSREP_TEST_PG_URL_FILE (ctest
# sets the latter). Every database made is dropped at exit (lib.sh's
# cleanup, and the teardowns of lib_cluster.sh and lib_nodes.sh, call
# pg_test_db_drop_all; dropping twice is harmless).
#
#   pg_test_admin_url             sets EVSREP_TEST_PG_URL (read from the file
#                                 if need be); dies when there is none
#   pg_test_db_create NAME [ADMIN_URL]
#                                 CREATE DATABASE NAME in ADMIN_URL's cluster
#                                 (default: the fixture's); sets PG_TEST_ADMIN
#                                 and PG_TEST_DB_URL (the database's URL)
#   pg_test_db_drop_all           DROP ... WITH (FORCE) every database made
#
# Users: lib.sh's PostgreSQL mode (EVSREP_TEST_STORE=postgresql: the
# all-in-one daemon with db = a database of its own), lib_cluster.sh (the
# two-node mode) and lib_nodes.sh (nodes_db_create).

PG_TEST_MADE=() # "ADMIN_URL NAME" of every database made

pg_test_admin_url() {
  if [ -z "${EVSREP_TEST_PG_URL:-}" ] && [ -n "${EVSREP_TEST_PG_URL_FILE:-}" ]; then
    EVSREP_TEST_PG_URL=$(cat "$EVSREP_TEST_PG_URL_FILE") ||
      die "cannot read EVSREP_TEST_PG_URL_FILE=$EVSREP_TEST_PG_URL_FILE (is the pg_cluster fixture up?)"
  fi
  [ -n "${EVSREP_TEST_PG_URL:-}" ] ||
    die "needs PostgreSQL: EVSREP_TEST_PG_URL or EVSREP_TEST_PG_URL_FILE (ctest's pg_cluster fixture sets it)"
}

pg_test_db_create() {
  local name=$1
  if [ -n "${2:-}" ]; then
    PG_TEST_ADMIN=$2
  else
    pg_test_admin_url
    PG_TEST_ADMIN=$EVSREP_TEST_PG_URL
  fi
  [[ "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "pg_test_db_create: bad database name '$name'"
  psql -q "$PG_TEST_ADMIN" -c "CREATE DATABASE $name" >/dev/null ||
    die "cannot create database $name in $PG_TEST_ADMIN"
  PG_TEST_MADE+=("$PG_TEST_ADMIN $name")
  PG_TEST_DB_URL="${PG_TEST_ADMIN%/*}/$name"
}

pg_test_db_drop_all() {
  local m
  for m in "${PG_TEST_MADE[@]}"; do
    psql -q "${m% *}" -c "DROP DATABASE IF EXISTS ${m##* } WITH (FORCE)" >/dev/null 2>&1 || true
  done
  PG_TEST_MADE=()
}
