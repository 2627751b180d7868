# Sourced by the net tests: stop_server PID [LOG] sends SIGTERM (and SIGCONT, for a server the
# test stopped), and SIGKILL if PID has not exited 10 s later, in the background, with a line
# in LOG (default: stderr). A sanitized criu-imgd's LeakSanitizer spins at exit for good in
# about 1 of 4 stops on this host (after "stopped" in its log, in its StopTheWorld: an open
# /proc/PID/task and the tracer's pipe), holding a CPU under every test and benchmark that came
# after; its leak report is lost then, the stop.err line says so.
stop_server() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null && kill -CONT "$1" 2>/dev/null
	(
		for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || exit 0; sleep 0.1; done
		echo "criu-imgd $1 did not exit 10 s after SIGTERM: SIGKILL" >&2
		kill -9 "$1" 2>/dev/null
	) </dev/null >/dev/null 2>>"${2:-/dev/stderr}" &
}
