#!/bin/sh
# Native end-to-end tests with real CRIU 4.x on this host's kernel (make nativetest): for each
# suite's root (tests/native/roots.sh), real `criu dump` and `criu restore --lazy-pages`, every
# scenario also served by that CRIU's own `criu lazy-pages`, memory verified in the tasks.
#   sh tests/native/run.sh [SUITE...] [-- PART...]
# SUITE: trixie (CRIU 4.1.1), sid (CRIU 4.2.1); default both. PART: e2e net many plugin runc
# podman (default all). The scenario scripts are the VM suite's (tests/vm/guest-*.sh), run here
# with the suite's criu first on PATH, plus tests/native/net.sh, ws.sh (working-set replay, in
# e2e), pfill.sh (fill threads, in e2e), many-test.sh (one image, many concurrent restores through one criu-imgd), runc.sh and
# podman.sh.
# Results and logs: build/native/SUITE-latest/. Prints "N passed, N failed" at the end.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
. "$ROOT/tests/native/env.sh"

suites="" parts=""
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; parts="$*"; break ;;
	*) suites="$suites $1" ;;
	esac
	shift
done
[ -n "$suites" ] || suites="trixie sid"
[ -n "$parts" ] || parts="e2e net many plugin runc podman"

for b in criu-lazyd criu-imgd; do
	[ -x "$ROOT/build/bin/$b" ] || { echo "run.sh: build/bin/$b missing: run make first" >&2; exit 2; }
done
for w in memhog chaos tree mixed thp guard; do
	[ -x "$ROOT/build/tests/workloads/$w" ] ||
		{ echo "run.sh: build/tests/workloads/$w missing: run make first" >&2; exit 2; }
done

E2E="memhog16 chaos tree zombie mixed detach exit thp memhog1g"
pass=0 fail=0 na=0

# count FILE: add FILE's PASS/FAIL/N/A lines to the totals, print them (with the excerpt of
# each failure from the dir of FILE).
count() {
	[ -f "$1" ] || return 0
	while IFS= read -r line; do
		echo "  $line"
		case $line in
		PASS*) pass=$((pass + 1)) ;;
		FAIL*)
			fail=$((fail + 1))
			# shellcheck disable=SC2086
			set -- $line
			for f in "$(dirname "$1")/fail-$2-$(echo "$3" | tr -d '()').txt" \
				"$(dirname "$1")/fail-$2.txt"; do
				[ -f "$f" ] && { sed 's/^/    | /' "$f" | tail -n 40; break; }
			done
			;;
		N/A*) na=$((na + 1)) ;;
		esac
	done <"$1"
}

# guard_part R: guard regions. CRIU 4.2 dumps them (VMA_AREA_GUARD); 4.1 does not know them:
# reported as not applicable with the reason.
guard_part() {
	if version_ge "$CRIU_VERSION" 4.2; then
		VMRUN_RESULTS=$1 sh "$ROOT/tests/vm/guest-e2e.sh" "$ROOT" guard
		# Guards the task installs on still-pending pages after restore: no uffd event tells
		# a daemon, and UFFDIO_COPY replaces a guard; criu lazy-pages 4.2.1 loses them
		# (docs/criu-compat.md), so this one is criu-lazyd's alone.
		mv "$1/summary" "$1/summary-guard"
		E2E_DAEMONS=ours VMRUN_RESULTS=$1 sh "$ROOT/tests/vm/guest-e2e.sh" "$ROOT" guard-late
		cat "$1/summary" >>"$1/summary-guard"
		mv "$1/summary-guard" "$1/summary"
	else
		echo "N/A guard (criu $CRIU_VERSION) CRIU before 4.2 cannot dump a task with guard" \
			"regions: it takes guard pages for swapped-out pages and its dump fails" \
			"(\"Can't splice all pages to pipe\"; docs/criu-compat.md)" | tee "$1/summary"
	fi
}

for suite in $suites; do
	R=$ROOT/build/native/$suite-$(date +%Y%m%d-%H%M%S)-$$
	mkdir -p "$R"
	ln -sfn "$(basename "$R")" "$ROOT/build/native/$suite-latest"
	ls -d "$ROOT/build/native/$suite"-2*-* 2>/dev/null | sort | head -n -3 | while read -r old; do
		rm -rf "$old"
	done
	if ! native_env "$suite" >"$R/env.out" 2>&1; then
		echo "FAIL native-$suite ($suite) $(cat "$R/env.out")" | tee "$R/summary"
		count "$R/summary"
		continue
	fi
	echo "== native $suite: CRIU $CRIU_VERSION, kernel $(uname -r) (logs: build/native/$suite-latest/)"
	# Workloads and sockets on the host's /tmp, one dir per suite and run.
	export VM=/tmp/criu-lazy-native-$suite-$$
	rm -rf "$VM"
	mkdir -p "$VM"
	for part in $parts; do
		t0=$(date +%s)
		mkdir -p "$R/$part"
		case $part in
		e2e)
			# shellcheck disable=SC2086
			VMRUN_RESULTS=$R/$part sh "$ROOT/tests/vm/guest-e2e.sh" "$ROOT" $E2E >"$R/$part.log" 2>&1
			mkdir -p "$R/guard"
			guard_part "$R/guard" >>"$R/$part.log" 2>&1
			mkdir -p "$R/ws"
			VMRUN_RESULTS=$R/ws sh "$ROOT/tests/native/ws.sh" "$ROOT" >>"$R/$part.log" 2>&1
			mkdir -p "$R/pfill"
			VMRUN_RESULTS=$R/pfill sh "$ROOT/tests/native/pfill.sh" "$ROOT" >>"$R/$part.log" 2>&1
			count "$R/$part/summary"
			count "$R/guard/summary"
			count "$R/ws/summary"
			count "$R/pfill/summary"
			;;
		net)
			VMRUN_RESULTS=$R/$part sh "$ROOT/tests/vm/guest-net.sh" "$ROOT" imgd >"$R/$part.log" 2>&1
			mv "$R/$part/summary" "$R/$part/summary-imgd" 2>/dev/null
			VMRUN_RESULTS=$R/$part sh "$ROOT/tests/native/net.sh" "$ROOT" byid veth >>"$R/$part.log" 2>&1
			count "$R/$part/summary-imgd"
			count "$R/$part/summary"
			;;
		many)
			VMRUN_RESULTS=$R/$part sh "$ROOT/tests/native/many-test.sh" "$ROOT" >"$R/$part.log" 2>&1
			count "$R/$part/summary"
			;;
		plugin)
			VMRUN_RESULTS=$R/$part sh "$ROOT/tests/vm/guest-plugin.sh" "$ROOT" >"$R/$part.log" 2>&1
			count "$R/$part/summary"
			;;
		runc)
			if [ -f "$ROOT/tests/native/runc.sh" ]; then
				sh "$ROOT/tests/native/runc.sh" "$suite" >"$R/$part.log" 2>&1
				grep -E '^(PASS|FAIL|N/A) ' "$R/$part.log" >"$R/$part/summary"
				count "$R/$part/summary"
			fi
			;;
		podman)
			sh "$ROOT/tests/native/podman.sh" "$suite" >"$R/$part.log" 2>&1
			grep -E '^(PASS|FAIL|N/A) ' "$R/$part.log" >"$R/$part/summary"
			count "$R/$part/summary"
			;;
		*) echo "FAIL $part ($suite) unknown part" >"$R/$part/summary"; count "$R/$part/summary" ;;
		esac
		echo "  ($part: $(( $(date +%s) - t0 )) s)"
	done
	rm -rf "$VM"
done
echo "native: $na not applicable"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
