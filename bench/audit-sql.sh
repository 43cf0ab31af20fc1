#!/usr/bin/env bash
# deed audit --from-sql on one large .sql file, and on the same statements
# split into many small files: time and peak memory of each.
#
#   bench/audit-sql.sh [MEGABYTES]     # defaults to 50
#
# The file holds a few dozen statement shapes with literals that vary on
# every line (inserts, updates, joins, CTEs, DDL), as a long migration
# history or a pg_dump would.
set -euo pipefail
cd "$(dirname "$0")/.."
mb="${1:-50}"
out=bench/out/sql-$mb
mkdir -p "$out/one" "$out/many"
cargo build --release -q -p deed
bin=target/release/deed
big="$out/one/all.sql"
if [ ! -f "$big" ]; then
  awk -v target=$((mb * 1024 * 1024)) 'BEGIN {
    srand(42); n = 0; bytes = 0
    while (bytes < target) {
      i = n % 8; k = int(rand() * 100000)
      if (i == 0) s = sprintf("INSERT INTO orders (user_id, total_cents, note) VALUES (%d, %d, '\''order %d'\'');", k, k * 3, n)
      else if (i == 1) s = sprintf("UPDATE products SET price_cents = %d, updated_at = now() WHERE id = %d;", k, n)
      else if (i == 2) s = sprintf("SELECT o.id, u.email FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id = %d;", k)
      else if (i == 3) s = sprintf("WITH recent AS (SELECT id FROM orders WHERE created_at > now() - interval '\''%d days'\'') SELECT count(*) FROM recent;", k % 90)
      else if (i == 4) s = sprintf("DELETE FROM sessions WHERE user_id = %d AND expires_at < now();", k)
      else if (i == 5) s = sprintf("SELECT p.name, sum(oi.quantity) FROM order_items oi JOIN products p ON p.id = oi.product_id WHERE oi.order_id IN (%d, %d, %d) GROUP BY p.name;", k, k + 1, k + 2)
      else if (i == 6) s = sprintf("INSERT INTO audit_log (actor, action) SELECT email, '\''login %d'\'' FROM users WHERE id = %d;", n, k)
      else s = sprintf("UPDATE shipments SET status = '\''shipped'\'' WHERE order_id = %d RETURNING id;", k)
      print s; bytes += length(s) + 1; n++
    }
  }' > "$big"
  split -l 1000 -d -a 4 --additional-suffix=.sql "$big" "$out/many/part-"
fi
statements=$(wc -l < "$big")
files=$(ls "$out/many" | wc -l)

measure() { # label, directory
  local t; t=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$t" "$bin" audit --from-sql "$2" --service app --format json >/dev/null 2>&1 || true
  read -r secs kb < <(tail -n 1 "$t"); rm -f "$t"
  printf '%-34s %7.1f s %8d MB\n' "$1" "$secs" $((kb / 1024))
}

echo "$statements statements, $(du -h "$big" | cut -f1)"
measure "one file" "$out/one"
measure "$files files of 1000 statements" "$out/many"
