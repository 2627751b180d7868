# Native CRIU 4.x on the host (sourced; POSIX sh): native_env SUITE puts that suite's criu and
# crit first on PATH, as wrappers that run the root's binaries through the root's own loader
# against the host's paths (shared/notes/native-criu.md). Needs ROOT (the project tree).
# Sets NROOT (the suite's root), NBIN (the wrappers' dir), CRIU_VERSION ("4.2.1").
NATIVE_ROOTS=${NATIVE_ROOTS:-/var/lib/criu-lazy/roots}

native_env() {
	NROOT=$NATIVE_ROOTS/$1
	if [ ! -x "$NROOT/usr/sbin/criu" ]; then
		echo "native: no CRIU root for $1 at $NROOT (make deps makes it)" >&2
		return 1
	fi
	NBIN=$ROOT/build/native/bin-$1
	mkdir -p "$NBIN"
	_ld="$NROOT/lib64/ld-linux-x86-64.so.2"
	_lp="$NROOT/lib/x86_64-linux-gnu:$NROOT/usr/lib/x86_64-linux-gnu"
	_wrapper "$NBIN/criu" <<EOW
#!/bin/sh
# CRIU of the $1 root, run natively on the host's paths through that root's loader.
exec "$_ld" --library-path "$_lp" "$NROOT/usr/sbin/criu" "\$@"
EOW
	# crit is Python: run it inside the root (it only reads stdin and writes stdout).
	_wrapper "$NBIN/crit" <<EOW
#!/bin/sh
exec chroot "$NROOT" /usr/bin/crit "\$@"
EOW
	PATH=$NBIN:$PATH
	export PATH
	CRIU_VERSION=$(criu --version 2>/dev/null | sed -n 's/^Version: *//p' | head -1)
	[ -n "$CRIU_VERSION" ] || { echo "native: criu of $1 does not run" >&2; return 1; }
}

# _wrapper PATH < TEXT: install an executable script, atomically and only if it changed (other
# runs may be executing the current one: rewriting it in place gives them "Text file busy").
_wrapper() {
	_t=$1.new.$$
	cat >"$_t" && chmod 0755 "$_t"
	if cmp -s "$_t" "$1"; then rm -f "$_t"; else mv -f "$_t" "$1"; fi
}

# version_ge A B: version A >= B (dotted numbers).
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

# native_bench_env DIR: for a benchmark (needs ROOT, LOGV): the suite's criu (NATIVE_SUITE,
# default sid) first on PATH, tests/vm/lib.sh's helpers working in DIR, the daemons at LOGV.
native_bench_env() {
	native_env "${NATIVE_SUITE:-sid}" || exit 1
	VM=$1
	. "$ROOT/tests/vm/lib.sh"
	VM=$1 # lib.sh's helpers read VM when they run: DIR, whatever lib.sh defaults to
	DAEMON_V=$LOGV
}
