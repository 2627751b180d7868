# A real Prometheus server (Debian's `prometheus`) for the metrics tests, sourced by
# tests/metrics/*.sh. Everything it listens on is loopback; its data dir is the caller's.
#   prom_start DIR TARGET...   scrape each HOST:PORT every second (job "criu-lazy"); sets
#                              PROM_URL and PROM_PID; its log in DIR/prometheus.log
#   prom_wait EXPR [SECONDS]   until the instant query EXPR has a result (default 30 s)
#   prom_query EXPR            print the first result's value ("" when none)
#   prom_stop
#   free_port                  print a loopback TCP port that was free a moment ago

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

prom_start() {
	_pd=$1
	shift
	mkdir -p "$_pd/data"
	_targets=""
	for _t in "$@"; do _targets="$_targets${_targets:+, }'$_t'"; done
	cat >"$_pd/prometheus.yml" <<EOT
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: criu-lazy
    static_configs:
      - targets: [$_targets]
EOT
	_pp=$(free_port)
	PROM_URL=http://127.0.0.1:$_pp
	prometheus --config.file="$_pd/prometheus.yml" --storage.tsdb.path="$_pd/data" \
		--web.listen-address="127.0.0.1:$_pp" >"$_pd/prometheus.log" 2>&1 &
	PROM_PID=$!
	prom_wait 'vector(1)' 30
}

prom_query() {
	python3 - "$PROM_URL" "$1" <<'EOT'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    r = json.load(urllib.request.urlopen(url, timeout=5))
except Exception:
    sys.exit(0)
res = r.get("data", {}).get("result", [])
if res:
    print(res[0]["value"][1])
EOT
}

prom_wait() {
	_n=$(( ${2:-30} * 10 ))
	while [ "$_n" -gt 0 ]; do
		[ -n "$(prom_query "$1")" ] && return 0
		sleep 0.1
		_n=$((_n - 1))
	done
	return 1
}

prom_stop() {
	[ -n "${PROM_PID:-}" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
	PROM_PID=
}
