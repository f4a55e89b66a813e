#!/usr/bin/env bash
# bench-sidecar.sh — the sidecar against NGINX and the bare backend, side by
# side in one run, on loopback only, bounded in time (about a minute).
#
# Measures, with `wrk -t2 -c32 -d4s --latency`, ROUNDS rounds interleaved
# (every path once per round, so drift hits all alike), reporting medians:
#
#   direct        GET /health on the backend itself (the ceiling)
#   nginx         NGINX proxy_pass, keep-alive upstream (deploy/nginx/bench-proxy.conf)
#   httputil      a bare httputil.ReverseProxy with a tuned Transport (scripts/benchproxy)
#   sidecar-bare  the sidecar, one public route, no rate limit, securityHeaders none, no access log
#   sidecar-full  the sidecar, ES256 JWT (cached), scope check, a rate limit that never
#                 trips, request IDs, breaker, security headers, metrics, JSON access log
#   sidecar-full-nethttp  the same with --no-fast-path: net/http + httputil.ReverseProxy only
#   sidecar-full-1p       sidecar-full with GOMAXPROCS=1 (a pod's sidecar limited to one CPU)
#   nginx-authz   NGINX enforcing the full policy with auth_request → the sidecar's --authz
#                 endpoint (deploy/nginx/bench-authz.conf); CPU is NGINX's and the authz sidecar's
#
# CPU per 1000 req/s is the proxy's own CPU (utime+stime from /proc/PID/stat,
# all NGINX processes together) divided by the throughput in thousands.
#
# Then, the latency at half of the peak (LATENCY=1, the default): with
# scripts/rateload, an open-loop fixed-rate generator (latency counted from
# each request's scheduled send time, so no coordinated omission), every path
# of LAT_NAMES is driven at the SAME absolute rate — LOAD (0.5) × the median
# wrk req/s of sidecar-full measured above, or RATE if set — for RATE_WARMUP
# + RATE_DURATION over RATE_CONNS keep-alive connections, ROUNDS rounds
# interleaved, medians. Reported: p50/p99/p99.9 and the added p99 against
# NGINX proxy_pass and against the backend direct.
#
# Usage: scripts/bench-sidecar.sh            (env: ROUNDS=3 DURATION=4s CONNS=32 THREADS=2 PROFILE=0
#                                                  LATENCY=1 LOAD=0.5 RATE= RATE_DURATION=5s RATE_WARMUP=1s RATE_CONNS=16)
# PROFILE=1 also writes a 4 s CPU profile of sidecar-full to ./sidecar-full.pprof.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PROFILE=${PROFILE:-0}
LATENCY=${LATENCY:-1}
LOAD=${LOAD:-0.5}
RATE=${RATE:-}
RATE_DURATION=${RATE_DURATION:-5s}
RATE_WARMUP=${RATE_WARMUP:-1s}
RATE_CONNS=${RATE_CONNS:-16}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/cg-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for bin in wrk nginx curl python3; do
	command -v "$bin" >/dev/null || { echo "bench-sidecar: $bin is required" >&2; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_up() {
	for _ in $(seq 100); do
		curl -s -o /dev/null "$@" && return 0
		sleep 0.1
	done
	echo "bench-sidecar: not answering: $*" >&2
	exit 1
}
cpu_ticks() { # utime+stime of the given pids, in clock ticks
	local sum=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$sum"
}

echo "building..." >&2
(cd "$ROOT" && go build -o "$WORK/cg" ./cmd/contentguard && go build -o "$WORK/benchproxy" ./scripts/benchproxy \
	&& go build -o "$WORK/rateload" ./scripts/rateload)
CG="$WORK/cg"

BE=$(free_port); NG=$(free_port); HU=$(free_port); SB=$(free_port); SF=$(free_port); AB=$(free_port); AF=$(free_port)
SN=$(free_port); AN=$(free_port); S1=$(free_port); A1=$(free_port)
NA=$(free_port); AZ=$(free_port); AZA=$(free_port); AZP=$(free_port)

# The backend: its cheapest route is GET /health.
"$CG" backend --listen "127.0.0.1:$BE" --log-level warn 2>"$WORK/backend.log" &
BE_PID=$!; PIDS+=("$BE_PID")

# NGINX proxy_pass with a keep-alive upstream.
mkdir -p "$WORK/nginx/tmp"
sed -e "s/@LISTEN@/127.0.0.1:$NG/" -e "s/@UPSTREAM@/127.0.0.1:$BE/" \
	"$ROOT/deploy/nginx/bench-proxy.conf" >"$WORK/nginx/nginx.conf"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2>"$WORK/nginx/stderr.log" &
NG_PID=$!; PIDS+=("$NG_PID")

# The yardstick: httputil.ReverseProxy and nothing else.
"$WORK/benchproxy" --listen "127.0.0.1:$HU" --upstream "http://127.0.0.1:$BE" 2>"$WORK/benchproxy.log" &
HU_PID=$!; PIDS+=("$HU_PID")

# Policies and the token of the full sidecar.
"$CG" token keygen --out "$WORK/keys" >/dev/null
TOKEN=$("$CG" token mint --key "$WORK/keys/signing.pem" --sub bench --scope "read write" \
	--aud content-api --iss https://bench.contentguard.local --ttl 1h)
cat >"$WORK/bare.yaml" <<EOF
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: bench-bare}
spec:
  upstream: {url: http://127.0.0.1:$BE, timeout: 10s}
  securityHeaders: none
  routes:
    - name: health
      match: {path: /health}
      auth: none
EOF
cat >"$WORK/full.yaml" <<EOF
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: bench-full}
spec:
  upstream: {url: http://127.0.0.1:$BE, timeout: 10s}
  requestID: {header: X-Request-ID, alsoHeaders: [X-Correlation-ID], trustIncoming: true, format: uuidv7}
  auth:
    jwt:
      providers:
        - name: main
          issuer: https://bench.contentguard.local
          audiences: [content-api]
          algorithms: [ES256]
          jwks: {file: keys/jwks.json}
          forwardClaims: {sub: X-Auth-Subject, scope: X-Auth-Scopes}
  rateLimit: {store: {type: memory}, headers: ietf}
  circuitBreaker: {consecutiveFailures: 5, openFor: 10s}
  securityHeaders: strict
  routes:
    - name: health
      match: {path: /health}
      auth: {anyOf: [jwt], scopes: [read]}
      rateLimit: {key: subject, rate: 1000000, per: 1s}
EOF
"$CG" sidecar --policy "$WORK/bare.yaml" --listen "127.0.0.1:$SB" --admin "127.0.0.1:$AB" --no-access-log \
	--log-level warn 2>"$WORK/sidecar-bare.log" &
SB_PID=$!; PIDS+=("$SB_PID")
"$CG" sidecar --policy "$WORK/full.yaml" --listen "127.0.0.1:$SF" --admin "127.0.0.1:$AF" --pprof \
	2>"$WORK/sidecar-full.log" &
SF_PID=$!; PIDS+=("$SF_PID")
"$CG" sidecar --policy "$WORK/full.yaml" --listen "127.0.0.1:$SN" --admin "127.0.0.1:$AN" --no-fast-path \
	2>"$WORK/sidecar-full-nethttp.log" &
SN_PID=$!; PIDS+=("$SN_PID")
GOMAXPROCS=1 "$CG" sidecar --policy "$WORK/full.yaml" --listen "127.0.0.1:$S1" --admin "127.0.0.1:$A1" \
	2>"$WORK/sidecar-full-1p.log" &
S1_PID=$!; PIDS+=("$S1_PID")

# NGINX auth_request: a sidecar on the full policy serves only --authz here.
"$CG" sidecar --policy "$WORK/full.yaml" --listen "127.0.0.1:$AZP" --admin "127.0.0.1:$AZA" --no-access-log \
	--authz "127.0.0.1:$AZ" --authz-trusted 127.0.0.1/32 --log-level warn 2>"$WORK/sidecar-authz.log" &
AZ_PID=$!; PIDS+=("$AZ_PID")
mkdir -p "$WORK/nginx-authz/tmp"
cp -r "$ROOT/deploy/nginx/contentguard" "$WORK/nginx-authz/contentguard"
"$CG" policy nginx --policy "$WORK/full.yaml" --out "$WORK/nginx-authz/contentguard" >/dev/null
sed -e "s/@LISTEN@/127.0.0.1:$NA/" -e "s/@UPSTREAM@/127.0.0.1:$BE/" -e "s/@AUTHZ@/127.0.0.1:$AZ/" \
	"$ROOT/deploy/nginx/bench-authz.conf" >"$WORK/nginx-authz/nginx.conf"
nginx -p "$WORK/nginx-authz" -c "$WORK/nginx-authz/nginx.conf" 2>"$WORK/nginx-authz/stderr.log" &
NA_PID=$!; PIDS+=("$NA_PID")

wait_up "http://127.0.0.1:$BE/health"
wait_up "http://127.0.0.1:$NG/health"
wait_up "http://127.0.0.1:$HU/health"
wait_up "http://127.0.0.1:$SB/health"
wait_up -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$SF/health"
wait_up -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$SN/health"
wait_up -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$S1/health"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$SF/health")
[ "$status" = 200 ] || { echo "bench-sidecar: full sidecar answered $status" >&2; exit 1; }
wait_up -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$NA/health"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$NA/health")
[ "$status" = 200 ] || { echo "bench-sidecar: NGINX auth_request answered $status" >&2; exit 1; }

NAMES=(direct nginx httputil sidecar-bare sidecar-full sidecar-full-nethttp sidecar-full-1p nginx-authz)
declare -A URL PIDSOF HDR
URL[direct]="http://127.0.0.1:$BE/health"; PIDSOF[direct]="$BE_PID"
URL[nginx]="http://127.0.0.1:$NG/health"
URL[httputil]="http://127.0.0.1:$HU/health"; PIDSOF[httputil]="$HU_PID"
URL[sidecar-bare]="http://127.0.0.1:$SB/health"; PIDSOF[sidecar-bare]="$SB_PID"
URL[sidecar-full]="http://127.0.0.1:$SF/health"; PIDSOF[sidecar-full]="$SF_PID"
HDR[sidecar-full]="Authorization: Bearer $TOKEN"
URL[sidecar-full-nethttp]="http://127.0.0.1:$SN/health"; PIDSOF[sidecar-full-nethttp]="$SN_PID"
HDR[sidecar-full-nethttp]="Authorization: Bearer $TOKEN"
URL[sidecar-full-1p]="http://127.0.0.1:$S1/health"; PIDSOF[sidecar-full-1p]="$S1_PID"
HDR[sidecar-full-1p]="Authorization: Bearer $TOKEN"
URL[nginx-authz]="http://127.0.0.1:$NA/health"; HDR[nginx-authz]="Authorization: Bearer $TOKEN"

to_ms() { # wrk latency value (850.00us, 1.20ms, 1.05s) → milliseconds
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else printf "%s", v }'
}

run_wrk() { # name → "rps p50ms p99ms cpu_ticks"
	local name=$1 pids before after out
	if [ "$name" = nginx ]; then
		pids="$NG_PID $(pgrep -P "$NG_PID" | tr '\n' ' ')"
	elif [ "$name" = nginx-authz ]; then
		pids="$NA_PID $(pgrep -P "$NA_PID" | tr '\n' ' ') $AZ_PID"
	else
		pids=${PIDSOF[$name]}
	fi
	local args=(-t"$THREADS" -c"$CONNS" -d"$DURATION" --latency --timeout 5s)
	[ -n "${HDR[$name]:-}" ] && args+=(-H "${HDR[$name]}")
	# shellcheck disable=SC2086
	before=$(cpu_ticks $pids)
	out=$(timeout 60 wrk "${args[@]}" "${URL[$name]}")
	# shellcheck disable=SC2086
	after=$(cpu_ticks $pids)
	if echo "$out" | grep -q "Non-2xx"; then
		echo "bench-sidecar: $name answered non-2xx:" >&2; echo "$out" >&2; exit 1
	fi
	local rps p50 p99
	rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
	p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
	p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
	echo "$rps $p50 $p99 $((after - before))"
}

# Warm up every path (connections, JIT-free but caches and pools).
for name in "${NAMES[@]}"; do
	args=(-t1 -c8 -d1s)
	[ -n "${HDR[$name]:-}" ] && args+=(-H "${HDR[$name]}")
	timeout 30 wrk "${args[@]}" "${URL[$name]}" >/dev/null
done

# rounds TABLE RUNNER LABEL NAME... — ROUNDS rounds, every name once per
# round (interleaved, so drift hits all alike); RUNNER's line per run is
# appended to TABLE[name].
rounds() {
	local -n table=$1
	local runner=$2 label=$3 round name r
	shift 3
	for round in $(seq "$ROUNDS"); do
		for name in "$@"; do
			r=$("$runner" "$name")
			echo "$label round $round $name: $r" >&2
			table[$name]+="$r"$'\n'
		done
	done
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { # TABLE NAME FIELD → the median of that field over the rounds
	local -n rows=$1
	echo -n "${rows[$2]}" | awk -v c="$3" '{print $c}' | median
}

declare -A RESULTS
rounds RESULTS run_wrk wrk "${NAMES[@]}"

if [ "$PROFILE" = 1 ]; then
	echo "profiling sidecar-full..." >&2
	curl -s -o "$ROOT/sidecar-full.pprof" "http://127.0.0.1:$AF/debug/pprof/profile?seconds=4" &
	cpid=$!
	timeout 60 wrk -t"$THREADS" -c"$CONNS" -d5s -H "${HDR[sidecar-full]}" "${URL[sidecar-full]}" >/dev/null
	wait "$cpid"
fi

TICKS=$(getconf CLK_TCK)
DUR_S=$(echo "$DURATION" | sed 's/s$//')
nginx_rps=$(col RESULTS nginx 1)

echo
echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency, $ROUNDS rounds, medians; $(nproc) cores; load average $(cut -d" " -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| path | req/s | ratio to NGINX | p50 ms | p99 ms | proxy CPU (cores) per 1000 req/s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for name in "${NAMES[@]}"; do
	rps=$(col RESULTS "$name" 1)
	p50=$(col RESULTS "$name" 2)
	p99=$(col RESULTS "$name" 3)
	# CPU cores used per 1000 req/s, per round, then the median.
	cpu=$(echo -n "${RESULTS[$name]}" | awk -v t="$TICKS" -v d="$DUR_S" '{ if ($1 > 0) printf "%.4f\n", ($4 / t / d) / ($1 / 1000) }' | median)
	ratio=$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { printf "%.2f", a / b }')
	printf '| %s | %.0f | %s | %s | %s | %s |\n' "$name" "$rps" "$ratio" "$p50" "$p99" "$cpu"
done

[ "$LATENCY" = 1 ] || exit 0

# Latency at a fixed fraction of the full sidecar's peak, the same absolute
# rate for every path so they are compared at equal load.
LAT_NAMES=(direct nginx sidecar-bare sidecar-full sidecar-full-1p nginx-authz)
full_rps=$(col RESULTS sidecar-full 1)
if [ -z "$RATE" ]; then
	RATE=$(awk -v p="$full_rps" -v f="$LOAD" 'BEGIN { printf "%.0f", p * f }')
fi

run_rateload() { # name → "achieved p50 p99 p99.9 send_lag_p99 errors unsent"
	local name=$1 out
	local args=(-url "${URL[$name]}" -rate "$RATE" -duration "$RATE_DURATION" -warmup "$RATE_WARMUP"
		-conns "$RATE_CONNS" -timeout 5s -json)
	[ -n "${HDR[$name]:-}" ] && args+=(-header "${HDR[$name]}")
	out=$(timeout 120 "$WORK/rateload" "${args[@]}")
	echo "$out" | python3 -c 'import json, sys
r = json.load(sys.stdin)
if r["errors"]:
    sys.exit("bench-sidecar: %s: %d errors, first: %s" % (r["url"], r["errors"], r.get("first_error", "")))
print("%.0f %.3f %.3f %.3f %.3f %d %d" % (r["achieved_rate"], r["p50_ms"], r["p99_ms"], r["p99_9_ms"],
    r["send_lag_p99_ms"], r["errors"], r["unsent"]))'
}

declare -A LAT
rounds LAT run_rateload latency "${LAT_NAMES[@]}"
nginx_p99=$(col LAT nginx 3)
direct_p99=$(col LAT direct 3)

echo
echo "rateload -rate $RATE ($LOAD × sidecar-full's median $(printf '%.0f' "$full_rps") req/s) -warmup $RATE_WARMUP -duration $RATE_DURATION -conns $RATE_CONNS, $ROUNDS rounds, medians; load average $(cut -d" " -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| path | achieved req/s | p50 ms | p99 ms | p99.9 ms | added p99 vs NGINX ms | added p99 vs direct ms | generator send-lag p99 ms | unsent |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for name in "${LAT_NAMES[@]}"; do
	p99=$(col LAT "$name" 3)
	printf '| %s | %.0f | %s | %s | %s | %+.3f | %+.3f | %s | %s |\n' "$name" "$(col LAT "$name" 1)" "$(col LAT "$name" 2)" \
		"$p99" "$(col LAT "$name" 4)" "$(awk -v a="$p99" -v b="$nginx_p99" 'BEGIN { print a - b }')" \
		"$(awk -v a="$p99" -v b="$direct_p99" 'BEGIN { print a - b }')" "$(col LAT "$name" 5)" "$(col LAT "$name" 7)"
done
