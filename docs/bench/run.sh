#!/usr/bin/env bash
# The measurements of docs/performance.md's "Re-measured 2026-11-29" sections, from the
# repository's root after `cargo build --release --bin mashangban --example booking_bench`
# (needs wrk, curl, PostgreSQL on 127.0.0.1:5432 with trust auth; writes under /tmp/bench):
#   docs/bench/run.sh > /tmp/bench/out.txt
# Intake (plain and with an Idempotency-Key) at c=8 and c=64 on both backends with the idle
# and peak RSS of each server, ten starts to ready per backend, then examples/booking_bench.
# Rate limits stay on (their counting is part of the cost) with limits no run reaches.
# PARTS="intake" (or "start", "step", "booking", any of them) runs only those parts; "step" is
# not in the default: a lifecycle step (a tax clerk calls a submitted request, If-Match "r1")
# at c=8 on both backends, each request called once (docs/bench/step.lua), after filling a
# fresh database with 40 s of intake.
set -u
mkdir -p /tmp/bench
PARTS=${PARTS:-"intake start booking"}
BIN=$(pwd)/target/release/mashangban
EX=$(pwd)/target/release/examples
PORT=18300
export MASHANGBAN_LOG_LEVEL=warn MASHANGBAN_RATE_LIMIT_ENTERPRISE=100000000 MASHANGBAN_RATE_LIMIT_OFFICIAL=100000000
echo "== uptime: $(uptime)"
serve() { # $1 url $2 dir
  (cd $2 && MASHANGBAN_BIND=127.0.0.1:$PORT MASHANGBAN_DATABASE_URL=$1 MASHANGBAN_JWT_SECRET=bench-secret-0123456789abcdefghijklmnopqrstuv exec $BIN serve >$2/server.log 2>&1) &
  SPID=$!
  for _ in $(seq 1 400); do curl -sf http://127.0.0.1:$PORT/health/ready >/dev/null && break; sleep 0.005; done
}
stop() { kill $SPID; wait $SPID 2>/dev/null; }
pid_of() { pgrep -f "$BIN serve" | head -1; }
[[ $PARTS == *intake* ]] && for backend in sqlite postgres; do
  for keyed in 0 1; do
    for c in 8 64; do
      d=/tmp/bench/$backend-$keyed-$c; rm -rf $d; mkdir -p $d
      if [ $backend = sqlite ]; then url=sqlite://$d/b.db; else dropdb -h 127.0.0.1 -U postgres --if-exists msb_bench_i >/dev/null 2>&1; createdb -h 127.0.0.1 -U postgres msb_bench_i; url=postgres://postgres@127.0.0.1:5432/msb_bench_i; fi
      serve $url $d
      sleep 2
      p=$(pid_of); idle=$(grep VmRSS /proc/$p/status | awk '{print $2}')
      TOKEN=$(cd $d && MASHANGBAN_DATABASE_URL=$url MASHANGBAN_JWT_SECRET=bench-secret-0123456789abcdefghijklmnopqrstuv $BIN token --role enterprise --uscc 91350100M000100Y43 --ttl 8h)
      export TOKEN KEYED=$keyed
      wrk -t2 -c$c -d5s -s docs/bench/intake.lua http://127.0.0.1:$PORT >/dev/null 2>&1
      r=$(wrk -t2 -c$c -d15s -s docs/bench/intake.lua http://127.0.0.1:$PORT 2>&1 | grep RESULT)
      hwm=$(grep VmHWM /proc/$p/status | awk '{print $2}')
      echo "intake $backend keyed=$keyed c=$c $r idle_rss_kb=$idle hwm_kb=$hwm"
      stop
    done
  done
done
# Start to ready and idle RSS (existing database), 10 starts each.
[[ $PARTS == *start* ]] && for backend in sqlite postgres; do
  d=/tmp/bench/start-$backend; rm -rf $d; mkdir -p $d
  if [ $backend = sqlite ]; then url=sqlite://$d/b.db; else dropdb -h 127.0.0.1 -U postgres --if-exists msb_bench_s >/dev/null 2>&1; createdb -h 127.0.0.1 -U postgres msb_bench_s; url=postgres://postgres@127.0.0.1:5432/msb_bench_s; fi
  serve $url $d; stop
  for i in $(seq 1 10); do
    t0=$(date +%s%N); serve $url $d; t1=$(date +%s%N); sleep 2; p=$(pid_of)
    echo "start $backend ms=$(( (t1-t0)/1000000 )) idle_rss_kb=$(grep VmRSS /proc/$p/status | awk '{print $2}')"
    stop
  done
done
# A lifecycle step at c=8: fill with intake, list the submitted requests' ids, call each once.
[[ $PARTS == *step* ]] && for backend in sqlite postgres; do
  d=/tmp/bench/step-$backend; rm -rf $d; mkdir -p $d
  if [ $backend = sqlite ]; then url=sqlite://$d/b.db; else dropdb -h 127.0.0.1 -U postgres --if-exists msb_bench_t >/dev/null 2>&1; createdb -h 127.0.0.1 -U postgres msb_bench_t; url=postgres://postgres@127.0.0.1:5432/msb_bench_t; fi
  serve $url $d
  secret=bench-secret-0123456789abcdefghijklmnopqrstuv
  TOKEN=$(cd $d && MASHANGBAN_DATABASE_URL=$url MASHANGBAN_JWT_SECRET=$secret $BIN token --role enterprise --uscc 91350100M000100Y43 --ttl 8h)
  export TOKEN KEYED=0
  wrk -t2 -c8 -d40s -s docs/bench/intake.lua http://127.0.0.1:$PORT >/dev/null 2>&1
  q="SELECT id FROM requests WHERE status = 'submitted' ORDER BY id"
  if [ $backend = sqlite ]; then sqlite3 $d/b.db "$q" > $d/ids; else psql -qtA -h 127.0.0.1 -U postgres -d msb_bench_t -c "$q" > $d/ids; fi
  TOKEN=$(cd $d && MASHANGBAN_DATABASE_URL=$url MASHANGBAN_JWT_SECRET=$secret $BIN token --role clerk --unit tax --ttl 8h)
  export TOKEN IDS=$d/ids THREADS=2
  n=$(wc -l < $d/ids)
  echo "step $backend c=8 requests=$n $(wrk -t2 -c8 -d15s -s docs/bench/step.lua http://127.0.0.1:$PORT 2>&1 | grep RESULT)"
  stop
done
# Booking, db layer vs raw insert.
[[ $PARTS == *booking* ]] || { echo "== uptime: $(uptime)"; exit 0; }
rm -rf /tmp/msb-booking && mkdir -p /tmp/msb-booking
$EX/booking_bench sqlite:///tmp/msb-booking/bench.db 15 8 64
dropdb -h 127.0.0.1 -U postgres --if-exists msb_booking >/dev/null 2>&1; createdb -h 127.0.0.1 -U postgres msb_booking
$EX/booking_bench postgres://postgres@127.0.0.1:5432/msb_booking 15 8 64
echo "== uptime: $(uptime)"
