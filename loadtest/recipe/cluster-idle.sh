#!/usr/bin/env bash
# cluster-idle.sh: the many-connection recipe. Starts NODES pushd processes
# as one cluster on this host, each on its own loopback address
# (127.0.1.<i+1>, ports 8080/8081/7946), then runs pushload against all of
# them: it ramps CONNS connections (hello + one register each), spreads its
# sockets over as many worker processes and 127.x source addresses as the
# open-files limit needs, holds them, and (SCENARIO=steady) PUTs to them.
# At the end it prints the report's figures and the nodes' memory and CPU per
# connection, then stops everything.
#
#   NODES=60 CONNS=1000000 RAMP=7000 HOLD=60s loadtest/recipe/cluster-idle.sh   # a 16-core host
#   NODES=3 CONNS=3000 SCENARIO=steady RATE=300 loadtest/recipe/cluster-idle.sh  # the small version CI runs
#
# Environment: NODES (3), CONNS (3000), RAMP (connections/s, 5000), HOLD
# (10s), SCENARIO (idle; steady also PUTs), RATE (PUT/s, 200), DURATION
# (5s), REPORT (report directory, a temporary one), BIN (directory of
# built pushd and pushload; built when empty), PUSHLOAD_ARGS (extra
# pushload flags, e.g. -max-conns-per-process 1000), LOGS (directory for
# the nodes' logs and node-rss.tsv, the nodes' summed RSS each second;
# the temporary directory when empty).
# Each node holds at most ~18,000 connections under a 20,000-file limit:
# NODES must be at least CONNS/18000.
set -euo pipefail

NODES=${NODES:-3}
CONNS=${CONNS:-3000}
RAMP=${RAMP:-5000}
HOLD=${HOLD:-10s}
SCENARIO=${SCENARIO:-idle}
RATE=${RATE:-200}
DURATION=${DURATION:-5s}
WORK=$(mktemp -d)
REPORT=${REPORT:-$WORK/report}
BIN=${BIN:-}
LOGS=${LOGS:-$WORK}
mkdir -p "$LOGS"
KEY=${PUSHD_CLUSTER_KEY:-recipe-cluster-key-$RANDOM$RANDOM$RANDOM}

cd "$(dirname "$0")/../.."
if [ -z "$BIN" ]; then
	BIN=$WORK/bin
	go build -o "$BIN/" ./cmd/pushd ./cmd/pushload
fi

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK/data"
}
trap cleanup EXIT

ws=() http=()
for ((i = 0; i < NODES; i++)); do
	ip=127.0.1.$((i + 1))
	join=()
	if ((i > 0)); then join=(-join 127.0.1.1:7946); fi
	PUSHD_CLUSTER_KEY=$KEY "$BIN/pushd" -node-name "node-$i" \
		-ws-addr "$ip:8080" -http-addr "$ip:8081" -endpoint-url "http://$ip:8081" \
		-data-dir "$WORK/data/node-$i" -cluster-addr "$ip:7946" "${join[@]}" \
		-log-level warn 2>"$LOGS/node-$i.log" &
	pids+=($!)
	ws+=("ws://$ip:8080") http+=("http://$ip:8081")
	# The first node must gossip before the others join it.
	for _ in $(seq 100); do
		curl -sf "http://$ip:8081/health" >/dev/null && break
		sleep 0.1
	done
done

# Wait until every node lists every member.
for h in "${http[@]}"; do
	for _ in $(seq 300); do
		n=$(curl -sf "$h/cluster" | grep -o '"name"' | wc -l || true)
		[ "$n" = "$NODES" ] && break
		sleep 0.1
	done
	[ "$n" = "$NODES" ] || { echo "cluster did not form: $h lists $n of $NODES" >&2; exit 1; }
done
echo "cluster of $NODES nodes formed"

rss_total() {
	local sum=0
	for p in "${pids[@]}"; do
		sum=$((sum + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo $((sum * 1024))
}
# cpu_total prints the nodes' summed user and system CPU in clock ticks.
cpu_total() {
	local sum=0
	for p in "${pids[@]}"; do
		sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo $sum
}
before=$(rss_total)
cpu_before=$(cpu_total)

status=0
# shellcheck disable=SC2086 # PUSHLOAD_ARGS is a list of flags
"$BIN/pushload" -scenario "$SCENARIO" -ws "$(IFS=,; echo "${ws[*]}")" -http "$(IFS=,; echo "${http[*]}")" \
	-conns "$CONNS" -ramp "$RAMP" -hold "$HOLD" -rate "$RATE" -duration "$DURATION" \
	-report "$REPORT" ${PUSHLOAD_ARGS:-} &
load=$!
# Sample the nodes' memory while the connections are held.
sleep 1
peak=$before
start=$SECONDS
echo "# seconds since pushload started, nodes' summed RSS in bytes" >"$LOGS/node-rss.tsv"
while kill -0 "$load" 2>/dev/null; do
	now=$(rss_total)
	((now > peak)) && peak=$now
	echo "$((SECONDS - start + 1))	$now" >>"$LOGS/node-rss.tsv"
	sleep 1
done
cpu_after=$(cpu_total)
wait "$load" || status=$?

echo "nodes' RSS: $before B before, $peak B peak; $(((peak - before) / CONNS)) B per connection"
ticks=$(getconf CLK_TCK)
echo "nodes' CPU during the run: $(((cpu_after - cpu_before) / ticks)) s; $(((cpu_after - cpu_before) * 1000000 / ticks / CONNS)) us per connection"
exit $status
