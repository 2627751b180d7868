#!/bin/sh
# selftest.sh ROOT: on the host, without CRIU, check that the workloads' own checkers pass on
# intact memory and catch a flipped byte. Prints one PASS/FAIL line.
set -eu
WL=$1/build/tests/workloads
d=$(mktemp -d /tmp/wl-selftest.XXXXXX)
# run() runs in a command substitution (a subshell): it stops its memhog itself, and leaves
# the pid in a file for this trap, not in a variable the subshell's exit would lose.
trap 'for f in "$d"/*/pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done; rm -rf "$d"' EXIT
run() { # run NAME [corrupt]: start memhog, fake a restore, verify; prints the verify line
	mkdir -p "$d/$1"
	"$WL/memhog" -m 2 -c "$d/$1" -o "$d/$1/result" </dev/null >/dev/null 2>&1 &
	_p=$!
	echo "$_p" >"$d/$1/pid"
	i=0
	until grep -q '^ready ' "$d/$1/result" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 500 ] || break; sleep 0.01
	done
	[ -z "${2:-}" ] || touch "$d/$1/corrupt"
	touch "$d/$1/restored" "$d/$1/verify"
	i=0
	until grep -q '^verify ' "$d/$1/result" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 500 ] || break; sleep 0.01
	done
	grep -m1 '^verify ' "$d/$1/result" || echo "no verify line"
	kill -KILL "$_p" 2>/dev/null || true
	wait "$_p" 2>/dev/null || true
	rm -f "$d/$1/pid"
}
good=$(run good)
bad=$(run bad corrupt)
case "$good|$bad" in
"verify ok"*"|verify FAIL"*) echo "PASS workload-selftest (host)" ;;
*) echo "FAIL workload-selftest (host) intact: '$good', corrupted: '$bad'" ;;
esac
