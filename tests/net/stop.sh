# Sourced by the net tests: stop_server PID [LOG] sends SIGTERM (and SIGCONT, for a server the
# test stopped), and SIGKILL if PID has not exited 20 s later, in the background, with a line
# in LOG (default: stderr). A sanitized build's LeakSanitizer once spun at exit for good,
# holding a CPU under every test and benchmark that came after.
stop_server() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null && kill -CONT "$1" 2>/dev/null
	(
		for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || exit 0; sleep 0.1; done
		echo "criu-imgd $1 did not exit 20 s after SIGTERM: SIGKILL" >&2
		kill -9 "$1" 2>/dev/null
	) </dev/null >/dev/null 2>>"${2:-/dev/stderr}" &
}
