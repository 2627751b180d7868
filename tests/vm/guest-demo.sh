# The demo: guest-demo.sh ROOT [MB], in the qemu guest (vmrun.sh) or natively with CRIU 4.x
# on PATH (tests/native/demo.sh; DEMO_WHERE says which).
# A guided tour: checkpoint a running program with CRIU, bring it back lazily with criu-lazyd,
# show that it works, what the daemon did, and, for the same images, the time to resume and
# the time until all memory is back: lazily with criu-lazyd, eagerly, and with criu lazy-pages.
set -eu
ROOT=$1
MB=${2:-256}
. "$ROOT/tests/vm/lib.sh"
C=demo
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }

say "criu-lazyd demo — ${DEMO_WHERE:-inside a throw-away VM} (kernel $(uname -r), real CRIU $(criu --version | sed -n 's/^Version: //p'))"
if [ ! -x "$OURS_LAZY" ]; then
	say "criu-lazyd is not built: run 'make' first."
	exit 1
fi

step "1. Start a program that holds $MB MB of memory"
say "   memhog fills $MB MB with a known pattern (some pages zero, some never touched)."
wl_start "$C" memhog -m "$MB" -s 42 >/dev/null
say "   running as pid $WPID"

step "2. Checkpoint it: criu dump -t $WPID -D $VM/$C/img"
wl_dump "$C" >/dev/null
say "   dumped in ${DUMP_MS} ms; the program is gone, its $(du -sm "$VM/$C/img" | cut -f1) MB of images remain"

step "3. Restore it lazily: criu-lazyd serves its memory on demand"
say "   \$ criu-lazyd -D IMG -W WORK -v3 --stats-file stats.json &"
say "   \$ criu restore -D IMG -W WORK --lazy-pages -d"
if ! DAEMON_V=3 HOLD_TICKS=3 restore_run "$C" ours verify-now; then
	say "   FAILED: $FAIL_WHY"
	excerpt "$RUN" "$C"
	exit 1
fi
lazy_ms=$RESUME_MS lazy_all=$TOUCH_MS
say "   the program ran again ${RESUME_MS} ms after criu restore started;"
say "   all $MB MB were back ${DRAIN_MS} ms after it (criu-lazyd then exits)."

step "4. It keeps working"
sed 's/^/   program says: /' "$RUN/result" | grep -v 'resumed' | sed -E 's/ at=[0-9]+//; s/ ([0-9]{19})$//'
say "   (\"verify ok\": it re-read all $MB MB and every byte was right)"

step "5. What criu-lazyd says"
grep -E 'summary|restore connected|finished' "$RUN/lazy.log" | sed 's/^/   /' || true
if [ -s "$RUN/stats.json" ]; then
	say "   stats file:"
	if command -v jq >/dev/null; then
		jq -r 'to_entries | map("\(.key)=\(.value | tostring)") | join("  ")' "$RUN/stats.json" |
			fold -s -w 88 | sed 's/^/     /'
	else
		sed 's/^/     /' "$RUN/stats.json"
	fi
fi

step "6. For comparison: a full (eager) criu restore of the same images"
if ! restore_run "$C" full; then
	say "   FAILED: $FAIL_WHY"
	exit 1
fi
full_ms=$RESUME_MS full_all=$TOUCH_MS
say "   the program ran again ${RESUME_MS} ms after criu restore started (all memory already in)."

step "7. And with CRIU's own daemon: criu lazy-pages"
if ! restore_run "$C" criu verify-now; then
	say "   FAILED: $FAIL_WHY"
	exit 1
fi
criu_ms=$RESUME_MS criu_all=$TOUCH_MS
say "   the program ran again ${RESUME_MS} ms after criu restore started."

step "Result (same images; 'all back': until the program had read all $MB MB, right after it resumed)"
printf '   %-28s %10s %12s\n' "" "resume" "all back"
printf '   %-28s %7s ms %9s ms\n' "lazy, criu-lazyd" "$lazy_ms" "$lazy_all" \
	"eager, criu restore" "$full_ms" "$full_all" "lazy, criu lazy-pages" "$criu_ms" "$criu_all"
awk -v a="$lazy_ms" -v b="$full_ms" 'BEGIN { if (a > 0) printf "   -> criu-lazyd resumes %.1fx sooner than an eager restore\n", b / a }'
awk -v a="$lazy_all" -v b="$criu_all" 'BEGIN { if (a > 0) printf "   -> all memory back %.2fx as fast as with criu lazy-pages (>1: faster)\n", b / a }'
say "   ${DEMO_NOTE:-(timings under software emulation: absolute numbers are slow, ratios are what count)}"
