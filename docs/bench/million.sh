#!/usr/bin/env bash
# The issue-18 table: the lists and statistics people wait for, through HTTP, on a database
# seeded by examples/sla_bench (1,000,000 requests), at c=1 and c=8. From the repository's
# root after `cargo build --release --bin mashangban --example sla_bench` (needs wrk, curl, jq):
#   target/release/examples/sla_bench --database-url URL --same-moment 0 --repetitions 0
#   docs/bench/million.sh URL > /tmp/bench/million-BACKEND.txt
# Each cell: a 3-second warm-up, then REPS (default 3) runs of DUR seconds (default 10);
# one RESULT line per run (wrk's p50/p99 over that run). After each endpoint the server's
# VmRSS and VmHWM (peak since start) are printed next to its idle RSS. Env: ONLY="cell ..."
# limits the cells; BIN, PORT and BENCH_DIR (the server's folder) default as below.
set -u
URL=$1
REPS=${REPS:-3}
DUR=${DUR:-10}
ONLY=${ONLY:-}
BIN=${BIN:-$(pwd)/target/release/mashangban}
PORT=${PORT:-18310}
D=${BENCH_DIR:-/tmp/bench/million}; mkdir -p $D
export MASHANGBAN_LOG_LEVEL=warn MASHANGBAN_RATE_LIMIT_ENTERPRISE=100000000 MASHANGBAN_RATE_LIMIT_OFFICIAL=100000000
export MASHANGBAN_DATABASE_URL=$URL MASHANGBAN_JWT_SECRET=bench-secret-0123456789abcdefghijklmnopqrstuv
echo "== $(date -u +%FT%TZ) $URL uptime: $(uptime)"
(cd $D && MASHANGBAN_BIND=127.0.0.1:$PORT exec $BIN serve >$D/server.log 2>&1) &
SPID=$!
for _ in $(seq 1 2000); do curl -sf http://127.0.0.1:$PORT/health/ready >/dev/null && break; sleep 0.01; done
sleep 2
P=$(pgrep -f "$BIN serve" | head -1)
echo "idle_rss_kb=$(grep VmRSS /proc/$P/status | awk '{print $2}')"
token() { (cd $D && $BIN token --ttl 8h "$@"); }
DISTRICT=$(token --role supervisor)
UNIT=$(token --role supervisor --unit market)
CLERK=$(token --role clerk --unit market)
CLERK_SMALL=$(token --role clerk --unit investment)
ENTERPRISE=$(token --role enterprise --uscc 91310107MA0000004M)
YEAR_FROM=$(date -u -d '365 days ago' +%Y-%m-%dT%H:%M:%SZ)
# The second page of the market clerk's list: the first page's cursor.
PAGE2=$(curl -s -H "Authorization: Bearer $CLERK" "http://127.0.0.1:$PORT/api/v1/requests?limit=20" | jq -r .next_cursor)
cells=(
  "stats-unit DISTRICT /api/v1/sla/stats?group_by=unit"
  "stats-matter DISTRICT /api/v1/sla/stats?group_by=matter"
  "stats-matter-year DISTRICT /api/v1/sla/stats?group_by=matter&from=$YEAR_FROM"
  "stats-unit-supervisor UNIT /api/v1/sla/stats?group_by=matter"
  "requests-district DISTRICT /api/v1/requests?limit=20"
  "requests-district-status DISTRICT /api/v1/requests?limit=20&status=accepted"
  "requests-district-delivered DISTRICT /api/v1/requests?limit=20&status=delivered"
  "requests-district-submitted DISTRICT /api/v1/requests?limit=20&status=submitted"
  "requests-district-unit DISTRICT /api/v1/requests?limit=20&unit=market"
  "requests-clerk CLERK /api/v1/requests?limit=20"
  "requests-clerk-page2 CLERK /api/v1/requests?limit=20&cursor=$PAGE2"
  "requests-clerk-submitted CLERK /api/v1/requests?limit=20&status=submitted"
  "requests-clerk-completed CLERK /api/v1/requests?limit=20&status=completed"
  "requests-clerk-small CLERK_SMALL /api/v1/requests?limit=20"
  "requests-unit-supervisor UNIT /api/v1/requests?limit=20"
  "requests-enterprise ENTERPRISE /api/v1/requests?limit=20"
  "queue CLERK /api/v1/queue"
  "breaches-district DISTRICT /api/v1/sla/breaches"
  "breaches-unit UNIT /api/v1/sla/breaches"
  "at-risk-district DISTRICT /api/v1/sla/at-risk?within=PT2H"
  "notifications-district DISTRICT /api/v1/notifications"
  "rectifications-district DISTRICT /api/v1/rectifications"
)
for cell in "${cells[@]}"; do
  read -r name who target <<<"$cell"
  [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]] && continue
  export TOKEN=${!who} TARGET=$target
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$target")
  for c in 1 8; do
    t=$(( c < 2 ? 1 : 2 ))
    wrk -t$t -c$c -d3s -s docs/bench/get.lua http://127.0.0.1:$PORT >/dev/null 2>&1
    for r in $(seq 1 $REPS); do
      echo "$name c=$c status=$status $(wrk -t$t -c$c -d${DUR}s -s docs/bench/get.lua http://127.0.0.1:$PORT 2>&1 | grep RESULT)"
    done
  done
  echo "$name rss_kb=$(grep VmRSS /proc/$P/status | awk '{print $2}') hwm_kb=$(grep VmHWM /proc/$P/status | awk '{print $2}')"
done
kill $SPID; wait $SPID 2>/dev/null
echo "== $(date -u +%FT%TZ) uptime: $(uptime)"
