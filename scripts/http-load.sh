# Sourced by HTTP benchmark scripts (bench-native.sh, bench-http.sh, bench-p3.sh): start
# servers, wait for their port, load them with wrk and report req/s, p50, p99 and the
# server's CPU per request.
# Needs $work (a scratch directory) and DURATION set by the script that sources it.

pids=()
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
# The server's CPU time (user + system) in clock ticks, from /proc/PID/stat.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# load URL [WRK-ARGS...]: wrk -t2 -c64; prints "req/s p50 p99 cpu-us/req" (the first
# started server's CPU).
load() {
  local url=$1; shift
  local pid=${pids[0]:-} before=0 after=0 out
  [ -n "$pid" ] && before=$(cpu_ticks "$pid")
  out=$(wrk -t2 -c64 -d"$DURATION" --latency "$@" "$url")
  [ -n "$pid" ] && after=$(cpu_ticks "$pid")
  local rps p50 p99 total hz
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers: $out" >&2; exit 1; fi
  hz=$(getconf CLK_TCK)
  echo "$rps $p50 $p99 $(awk -v t=$((after - before)) -v n="$total" -v hz="$hz" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')"
}
start() { "$@" >>"$work/server.log" 2>&1 & pids+=($!); }
# serve PORT CMD...: starts a server, waits for its port, warms it with one short load.
serve() { local port=$1; shift; start "$@"; wait_port "$port"; curl -sf "http://127.0.0.1:$port/" >/dev/null; DURATION=2s load "http://127.0.0.1:$port/" >/dev/null; }
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); sleep 0.3; }
