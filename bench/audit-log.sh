#!/usr/bin/env bash
# deed audit --from-log against pgBadger on the same generated csvlog.
#
#   bench/audit-log.sh [SIZE]        # SIZE defaults to 1G
#
# Generates bench/out/audit-<SIZE>.csv once (a PostgreSQL 15 csvlog with a
# few hundred statement shapes and varying literals), then times both tools
# on it, reporting wall time, statements per second and peak memory. A 10x
# smaller file is also audited, to show that deed's memory does not grow
# with the file.
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-1G}"
out=bench/out
mkdir -p "$out"
command -v pgbadger >/dev/null || { echo "pgbadger is missing: apt-get install -y pgbadger" >&2; exit 2; }
cargo build --release -q -p deed -p deed-bench
bin=target/release
log="$out/audit-$size.csv"
small="$out/audit-$size-tenth.csv"
[ -f "$log" ] || "$bin/deed-bench" gen-log --out "$log" --size "$size"
if [ ! -f "$small" ]; then
  bytes=$(stat -c %s "$log")
  "$bin/deed-bench" gen-log --out "$small" --size "$((bytes / 10))"
fi
statements=$(grep -c -E 'LOG,00000,"duration: [0-9.]+ ms  (statement|execute)' "$log" || true)

measure() { # label, command...
  local label=$1; shift
  local t; t=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$t" "$@" >/dev/null 2>"$out/$label.stderr" || true
  read -r secs kb < <(tail -n 1 "$t"); rm -f "$t"
  printf '%-26s %8.1f s %12s stmt/s %8d MB\n' "$label" "$secs" \
    "$(python3 -c "print(f'{int($statements/$secs):,}')" 2>/dev/null || echo '?')" $((kb / 1024))
  echo "$secs" > "$out/$label.secs"
}

echo "file: $log ($(du -h "$log" | cut -f1), $statements statements)"
# deed is fast enough to time three times; the median is reported.
for run in 1 2 3; do measure "deed run $run" "$bin/deed" audit --from-log "$log" --format json; done
sort -n "$out"/deed\ run\ ?.secs | sed -n 2p > "$out/deed.secs"
echo "deed median: $(cat "$out/deed.secs") s"
measure "pgbadger -j 1" pgbadger -f csv -j 1 -q -o "$out/pgbadger.html" "$log"
measure "pgbadger -j 2" pgbadger -f csv -j 2 -q -o "$out/pgbadger.html" "$log"
ratio1=$(python3 -c "print(round($(cat "$out/pgbadger -j 1.secs")/$(cat "$out/deed.secs"), 1))")
ratio2=$(python3 -c "print(round($(cat "$out/pgbadger -j 2.secs")/$(cat "$out/deed.secs"), 1))")
echo "deed is ${ratio1}x pgBadger -j 1 and ${ratio2}x pgBadger -j 2 on this file"
/usr/bin/time -f "deed on a tenth of the file: %e s, %M KB peak" "$bin/deed" audit --from-log "$small" --format json >/dev/null || true
