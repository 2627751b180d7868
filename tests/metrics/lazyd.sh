#!/bin/sh
# criu-lazyd's operator interfaces on a live restore: restore-sim's "large" scenario with
# criu-lazyd --metrics-address, and while it runs `criu-lazyd status` (table, --json checked
# with jq, --watch without a terminal), a user that is not root refused, /metrics through
# `promtool check metrics`, and a real Prometheus scraping it (tests/metrics/prom-lib.sh).
#
#   sh tests/metrics/lazyd.sh [BUILD_DIR]     BUILD_DIR: build (default) or build-san
#
# The restore must last long enough to be watched (unhindered it drains 256 MB in 0.1 s): the
# daemon runs in a cgroup of its own limited to 0.5% of a CPU (1 ms each 200 ms; cgroup v1 cpu,
# or v2 cpu.max) until the checks are done, then the limit is lifted and the restore finishes
# (restore-sim checks every byte). No check is timed:
# each waits for a state (bounded, so that a broken daemon fails the test, never hangs it).
# Needs root (userfaultfd, cgroups), jq, curl, promtool and prometheus (make deps).
# Prints PASS/FAIL/SKIP lines and "N passed, M failed"; exits 1 on a failure.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
LAZYD=$B/bin/criu-lazyd
SIM=$B/tests/host/restore-sim
. "$ROOT/tests/metrics/prom-lib.sh"
pass=0 fail=0

ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit $?
}

for p in "$LAZYD" "$SIM"; do
	[ -x "$p" ] || { bad setup "$p is missing: run make first"; finish; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP lazyd-metrics: needs root (userfaultfd, cgroups)"; finish; }
for t in jq curl promtool prometheus setpriv; do
	command -v $t >/dev/null || { bad setup "$t not found (make deps)"; finish; }
done

T=$(mktemp -d /tmp/lazyd-metrics.XXXXXX) || exit 1
chmod 755 "$T" # the socket's own mode must be what refuses another user
W=$T/sim/work
sim_pid="" watch_pid="" cg="" cg_quota=""

# ---- the throttle ----
if [ -w /sys/fs/cgroup/cpu/cgroup.procs ] && [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
	cg=/sys/fs/cgroup/cpu/criu-lazyd-test-$$
	mkdir "$cg" && echo 200000 >"$cg/cpu.cfs_period_us" && echo 1000 >"$cg/cpu.cfs_quota_us" &&
		cg_quota=v1
elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
	cg=/sys/fs/cgroup/criu-lazyd-test-$$
	echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
	mkdir "$cg" && echo "1000 200000" >"$cg/cpu.max" && cg_quota=v2
fi
unthrottle() {
	case $cg_quota in
	v1) echo -1 >"$cg/cpu.cfs_quota_us" ;;
	v2) echo "max 200000" >"$cg/cpu.max" ;;
	esac
}
cleanup() {
	[ -n "$cg_quota" ] && unthrottle
	[ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null
	[ -n "$sim_pid" ] && { wait "$sim_pid" 2>/dev/null || kill "$sim_pid" 2>/dev/null; }
	prom_stop
	[ -n "$cg" ] && [ -d "$cg" ] && rmdir "$cg" 2>/dev/null
	if [ -n "${LAZYD_METRICS_KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
if [ -z "$cg_quota" ]; then
	echo "SKIP lazyd-metrics: no cgroup cpu controller to slow the daemon down with"
	finish
fi

# ---- the restore, watched by Prometheus from the start ----
port=$(free_port)
cat >"$T/lazyd.sh" <<EOF
#!/bin/sh
# restore-sim's daemon: criu-lazyd in the throttled cgroup, with --metrics-address.
echo \$\$ >"$cg/cgroup.procs" || exit 125
exec "$LAZYD" --metrics-address 127.0.0.1:$port "\$@"
EOF
chmod 755 "$T/lazyd.sh"
if ! prom_start "$T/prom" "127.0.0.1:$port"; then
	bad prometheus "did not start: $(tail -3 "$T/prom/prometheus.log")"
	finish
fi
mkdir "$T/sim"
("$SIM" --scenario large --daemon "$T/lazyd.sh" --dir "$T/sim" >"$T/sim.out" 2>&1
	echo $? >"$T/sim.rc") &
sim_pid=$!

# Until the restore has sent its tasks and its finished marker (the drain runs).
n=0
# (jq 1.6 -e says 0 on an empty input: the file must have something first.)
until "$LAZYD" status -W "$W" --json >"$T/first.json" 2>/dev/null && [ -s "$T/first.json" ] &&
	jq -e '.restore_finished and .totals.tasks > 0' "$T/first.json" >/dev/null 2>&1; do
	n=$((n + 1))
	if [ $n -gt 600 ] || [ -e "$T/sim.rc" ]; then
		bad live "no restore to watch: $(tail -3 "$T/sim.out")"
		finish
	fi
	sleep 0.1
done

# ---- criu-lazyd status ----
if "$LAZYD" status -W "$W" >"$T/status.txt" 2>&1 &&
	grep -q '^ *PID  STATE *PENDING *INSTALLED' "$T/status.txt" &&
	grep -Eq '^ *[0-9]+  served ' "$T/status.txt" &&
	grep -Eq '^total: [0-9]+ of [0-9]+ data pages in .* pages/s, ETA .*source local' "$T/status.txt"; then
	ok "status: a table of the tasks and a totals line"
	sed 's/^/     /' "$T/status.txt"
else
	bad status "$(cat "$T/status.txt")"
fi

if "$LAZYD" status -W "$W" --json >"$T/status.json" 2>"$T/json.err" && [ -s "$T/status.json" ] &&
	jq -e '
	  def adds_up: .pages_pending + .pages_fault + .pages_prefetch + .pages_dropped == .pages_total;
	  (.totals | adds_up) and (.tasks | length > 0 and all(adds_up)) and
	  .totals.pages_total == .totals.image_pages and .totals.pages_total > 0 and
	  (.tasks[0] | has("pid") and .state == "LAZYD_TASK_SERVED" and has("faults_queued")) and
	  (.rate_pages_s | type == "number") and has("uptime_s") and .restore_finished and
	  (.fault_latency | has("p50_ns") and has("p99_ns") and has("buckets")) and
	  (.counters | has("faults") and has("eexist") and has("eagain") and has("forks")) and
	  .source.name == "local" and .source.state == "LAZYD_SOURCE_LOCAL" and
	  .fill.name != "" and .version != "" and .work_dir != ""' "$T/status.json" >/dev/null; then
	ok "status --json: pending + installed + dropped == total, for the totals and each task"
else
	bad "status --json" "$(cat "$T/json.err"; head -c 600 "$T/status.json")"
fi

# --watch without a terminal: one plain line per refresh.
: >"$T/watch.txt"
"$LAZYD" status -W "$W" --watch 0.3 >"$T/watch.txt" 2>&1 &
watch_pid=$!
n=0
while [ "$(wc -l <"$T/watch.txt")" -lt 3 ] && [ $n -lt 300 ] && kill -0 $watch_pid 2>/dev/null; do
	sleep 0.1
	n=$((n + 1))
done
kill $watch_pid 2>/dev/null
wait $watch_pid 2>/dev/null
watch_pid=""
lines=$(grep -Ec '^up [0-9].*: [0-9]+ of [0-9]+ data pages in' "$T/watch.txt")
if [ "$lines" -ge 3 ] && ! grep -q "$(printf '\033')" "$T/watch.txt"; then
	ok "status --watch: $lines plain progress lines, no terminal codes"
else
	bad "status --watch" "$(head -5 "$T/watch.txt")"
fi

# Another user: refused by the socket (mode 0600, and the peer's uid checked).
cp "$LAZYD" "$T/criu-lazyd" && chmod 755 "$T/criu-lazyd"
setpriv --reuid 65534 --regid 65534 --clear-groups "$T/criu-lazyd" status -W "$W" \
	>"$T/nobody.txt" 2>&1
r=$?
if [ $r = 1 ] && grep -q "Permission denied" "$T/nobody.txt" &&
	grep -q "root or the daemon's user" "$T/nobody.txt"; then
	ok "status as nobody: refused, exit 1: $(head -1 "$T/nobody.txt")"
else
	bad "status as nobody" "exit $r: $(cat "$T/nobody.txt")"
fi

# ---- /metrics ----
if curl -sf "http://127.0.0.1:$port/metrics" >"$T/metrics.txt" &&
	promtool check metrics <"$T/metrics.txt" >"$T/promtool.txt" 2>&1 &&
	grep -q '^criu_lazyd_pages_installed_total{path="prefetch"} [1-9]' "$T/metrics.txt" &&
	grep -q '^criu_lazyd_info{version=' "$T/metrics.txt" &&
	grep -q '^criu_lazyd_fault_latency_seconds_bucket{le="+Inf"}' "$T/metrics.txt" &&
	grep -q '^criu_lazyd_task_pages_pending{pid="[0-9]*"}' "$T/metrics.txt"; then
	ok "/metrics: $(grep -c '^criu_lazyd_' "$T/metrics.txt") samples, promtool check metrics clean"
else
	bad /metrics "$(cat "$T/promtool.txt"; head -5 "$T/metrics.txt")"
fi

if prom_wait 'up{job="criu-lazy"} == 1' 30 &&
	prom_wait 'sum(criu_lazyd_pages_installed_total) > 0' 30; then
	ok "prometheus: up == 1, criu_lazyd_pages_installed_total $(prom_query 'sum(criu_lazyd_pages_installed_total)') pages"
else
	bad prometheus "up $(prom_query 'up{job="criu-lazy"}'), installed $(prom_query 'sum(criu_lazyd_pages_installed_total)')"
fi

# ---- the end: unthrottled, the restore completes; --watch ends with the daemon ----
"$LAZYD" status -W "$W" --watch 0.2 >"$T/watch2.txt" 2>&1 &
watch_pid=$!
# Its first report before the restore may end (a sanitized client starts slowly: it once
# came after the daemon had gone).
n=0
while [ ! -s "$T/watch2.txt" ] && [ $n -lt 100 ]; do
	sleep 0.1
	n=$((n + 1))
done
unthrottle
wait "$sim_pid"
r=$(cat "$T/sim.rc" 2>/dev/null || echo "?")
sim_pid=""
if [ $r = 0 ] && grep -q "stats match the images" "$T/sim.out"; then
	ok "restore: completed, every byte checked by restore-sim"
else
	bad restore "exit $r: $(tail -5 "$T/sim.out")"
fi
n=0
while kill -0 $watch_pid 2>/dev/null && [ $n -lt 100 ]; do
	sleep 0.1
	n=$((n + 1))
done
if ! kill -0 $watch_pid 2>/dev/null && wait $watch_pid && grep -q "is gone" "$T/watch2.txt"; then
	ok "status --watch: ends with exit 0 when the daemon exits"
else
	bad "status --watch at the end" "$(tail -3 "$T/watch2.txt")"
fi
watch_pid=""
"$LAZYD" status -W "$W" >"$T/after.txt" 2>&1
r=$?
if [ $r = 1 ] && [ ! -e "$W/criu-lazyd.status" ] && grep -q "is criu-lazyd running" "$T/after.txt"; then
	ok "after the daemon: socket removed, status exits 1: $(head -1 "$T/after.txt")"
else
	bad "after the daemon" "exit $r: $(cat "$T/after.txt")"
fi
finish
