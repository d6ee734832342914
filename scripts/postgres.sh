#!/usr/bin/env bash
# start: create a temporary PostgreSQL cluster on a free 127.0.0.1 port and print shell exports
#        (PG_DIR, VERL_STUDIO_TEST_PG_URL); stop DIR: stop it and remove it.
# PostgreSQL refuses to run as root, so the server runs as the postgres user when we are root.
set -euo pipefail
cd /  # the postgres user may not be allowed into the caller's directory
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
start)
  dir=$(mktemp -d /tmp/verl-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg "$bindir/initdb" -D "$dir/data" -U verl --auth=trust >/dev/null
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U verl verl_test
  echo "export PG_DIR=$dir"
  echo "export VERL_STUDIO_TEST_PG_URL=postgresql+psycopg://verl@127.0.0.1:$port/verl_test"
  ;;
stop)
  as_pg "$bindir/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null || true
  rm -rf "$2"
  ;;
*)
  echo "usage: $0 start | stop DIR" >&2
  exit 2
  ;;
esac
