#!/usr/bin/env bash
# What logging old rows costs writers: the same single-row UPDATE load
# (pgbench, 4 clients, 10 s each) on a table with REPLICA IDENTITY DEFAULT
# and then FULL, in a private throwaway cluster with wal_level = logical.
# Prints transactions per second and WAL bytes per update for each.
#   bash bench/replica-identity.sh [seconds]
set -euo pipefail
secs=${1:-10}
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
# PostgreSQL refuses to run as root: as root, the cluster runs as postgres.
as=()
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; as=(runuser -u postgres --); fi
trap '"${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"${as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
"${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c wal_level=logical -c listen_addresses=''" start >/dev/null
psql() { command psql -XAtq -h "$dir" -p "$port" -U postgres "$@"; }
cat > "$dir/update.sql" <<'SQL'
\set id random(1, 100000)
UPDATE t SET hits = hits + 1, updated_at = now() WHERE id = :id;
SQL
echo "identity  tps      wal_bytes_per_update"
for identity in DEFAULT FULL; do
  psql -c "SET client_min_messages = warning; DROP TABLE IF EXISTS t" \
       -c "CREATE TABLE t (id int PRIMARY KEY, price int NOT NULL, hits int NOT NULL, updated_at timestamptz NOT NULL)" \
       -c "INSERT INTO t SELECT g, g, 0, now() FROM generate_series(1, 100000) g" \
       -c "ALTER TABLE t REPLICA IDENTITY $identity" -c "VACUUM ANALYZE t" -c "CHECKPOINT"
  before=$(psql -c "SELECT pg_current_wal_lsn()")
  out=$(pgbench -n -h "$dir" -p "$port" -U postgres -c 4 -j 2 -T "$secs" -f "$dir/update.sql" postgres)
  after=$(psql -c "SELECT pg_current_wal_lsn()")
  tx=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out")
  tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -1)
  bytes=$(psql -c "SELECT round(pg_wal_lsn_diff('$after', '$before') / $tx)")
  printf '%-9s %-8s %s\n' "$identity" "$tps" "$bytes"
done
