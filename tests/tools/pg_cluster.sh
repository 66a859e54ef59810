#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the store tests (ctest fixture).
#
#   pg_cluster.sh start STATE_DIR   initdb + start; writes STATE_DIR/url
#   pg_cluster.sh stop STATE_DIR    stop the server, remove its files
#   pg_cluster.sh restart STATE_DIR [DOWN_SECONDS]
#                                   stop the server (fast), stay down that
#                                   long (default 0), start it on the same
#                                   port with the same data (store outage tests)
#
# The cluster lives in a fresh temporary directory owned by an unprivileged
# user (PostgreSQL refuses to run as root): `nobody` when run as root, else the
# caller. It listens on 127.0.0.1 only (EVSREP_PG_HOST: another 127.0.0.x
# address, e.g. inside a test's network namespace), on a free port, and on a unix socket in
# its own directory; fsync stays on (the durability test relies on it). A
# watchdog stops it after EVSREP_PG_MAX_SECONDS (default 1800) even if the
# cleanup fixture never runs. A missing PostgreSQL is an error, not a skip.
set -euo pipefail

cmd=${1:?usage: pg_cluster.sh start|stop|restart STATE_DIR}
state=${2:?usage: pg_cluster.sh start|stop STATE_DIR}
max_seconds=${EVSREP_PG_MAX_SECONDS:-1800}
host=${EVSREP_PG_HOST:-127.0.0.1}
case "$host" in
  127.*) ;;
  *) echo "pg_cluster.sh: EVSREP_PG_HOST must be a 127.0.0.x address, not $host" >&2; exit 2 ;;
esac

bindir=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && bindir=$d
done
if [ -z "$bindir" ]; then
  echo "pg_cluster.sh: PostgreSQL server binaries not found (Debian: apt-get install postgresql;" \
       "scripts/deps.sh installs it)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

stop_cluster() {
  [ -f "$state/dir" ] || return 0
  local dir
  dir=$(cat "$state/dir")
  if [ -f "$state/watchdog.pid" ]; then
    # its own session (setsid): end the sleep with it
    kill -- "-$(cat "$state/watchdog.pid")" 2>/dev/null || true
  fi
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  case "$dir" in
    /tmp/evsrep-pg.*) rm -rf "$dir" ;;
  esac
  rm -f "$state/dir" "$state/url" "$state/watchdog.pid"
}

free_port() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$host"
}

case "$cmd" in
  start)
    mkdir -p "$state"
    stop_cluster # a leftover from an interrupted run
    dir=$(mktemp -d /tmp/evsrep-pg.XXXXXX)
    chmod 755 "$dir"
    echo "$dir" >"$state/dir"
    if [ "$(id -u)" -eq 0 ]; then chown nobody "$dir"; fi
    as_owner "$bindir/initdb" -D "$dir/data" -U evsrep --auth=trust -E UTF8 --locale=C \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # initdb trusts 127.0.0.1 only; a client of 127.0.0.x connects from
    # that address (loopback picks the destination as the source).
    echo "host all all 127.0.0.0/8 trust" >>"$dir/data/pg_hba.conf"
    port=""
    for _ in 1 2 3 4 5; do
      port=$(free_port)
      if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
          -o "-c listen_addresses=$host -p $port -k $dir -c fsync=on -c max_connections=100" \
          start >/dev/null 2>&1; then
        break
      fi
      port=""
    done
    if [ -z "$port" ]; then
      echo "pg_cluster.sh: the server did not start; its log:" >&2
      cat "$dir/server.log" >&2 || true
      exit 1
    fi
    # Bound the cluster's life even if the cleanup fixture never runs.
    setsid bash -c "sleep $max_seconds; '$0' stop '$state'" </dev/null >/dev/null 2>&1 &
    echo $! >"$state/watchdog.pid"
    echo "postgresql://evsrep@$host:$port/postgres" >"$state/url"
    echo "pg_cluster.sh: PostgreSQL on $host:$port (data in $dir)"
    ;;
  stop)
    stop_cluster
    ;;
  restart)
    [ -f "$state/dir" ] && [ -f "$state/url" ] || { echo "pg_cluster.sh: no cluster in $state" >&2; exit 1; }
    dir=$(cat "$state/dir")
    port=$(sed -E 's|.*:([0-9]+)/.*|\1|' "$state/url")
    host=$(sed -E 's|.*@([^:/]+):.*|\1|' "$state/url") # as started
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
    sleep "${3:-0}"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses=$host -p $port -k $dir -c fsync=on -c max_connections=100" \
      start >/dev/null
    ;;
  *)
    echo "usage: pg_cluster.sh start|stop|restart STATE_DIR" >&2
    exit 2
    ;;
esac
