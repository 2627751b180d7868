#!/bin/sh
# Cross-check our image reader against crit: img-dump's view of an images dir must equal
# the view that tests/fixtures/images/view.jq computes, page by page, from `crit decode`.
#
#   sh tests/host/test-img-vs-crit.sh [BUILD_DIR] [IMAGES_DIR...]
#
# Without IMAGES_DIR, checks the tree and multi fixtures (encoded here by crit encode, with
# zero-filled pages files). Give real dump dirs to check those; keep them small: view.jq is
# a page-by-page model. Run from the repo root. Exits 1 on any mismatch or error.

B=${1:-build}
[ $# -gt 0 ] && shift
DUMP=$B/tests/host/img-dump
VIEW=tests/fixtures/images/view.jq
if [ ! -x "$DUMP" ]; then
	echo "img-vs-crit: $DUMP is missing: build it first (make)" >&2
	exit 1
fi
tmp=$(mktemp -d /tmp/img-vs-crit.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# A fixture dir as crit encodes it, pages files sized for their present pages.
make_fixture() {
	out=$tmp/fx-$1
	mkdir -p "$out" || return 1
	for j in tests/fixtures/images/$1/*.json; do
		b=$(basename "$j" .json)
		crit encode -i "$j" -o "$out/$b.img" || return 1
	done
	for pm in "$out"/pagemap-*.img; do
		[ -e "$pm" ] || continue
		crit decode -i "$pm" -o "$tmp/pm.dec" || return 1
		id=$(jq '.entries[0].pages_id' "$tmp/pm.dec")
		n=$(jq '[.entries[1:][] | select(.in_parent != true and
			(.flags == null or ((.flags / 4 | floor) % 2 == 1))) | .nr_pages] | add // 0' \
			"$tmp/pm.dec")
		truncate -s $((n * 4096)) "$out/pages-$id.img" || return 1
	done
	echo "$out"
}

# Our view, in view.jq's line format.
ours() {
	"$DUMP" "$1" >"$tmp/ours.json" || return 1
	jq -r '(.tasks[] | "task \(.pid) \(.ppid) \(.threads)"), "version \(.img_version)",
		(.tasks[] | select(.has_mm) | "mm \(.pid)",
		 (.vmas[] | "vma \(.start) \(.end) \(.prot) \(.flags) \(.status) \(if .lazy then 1 else 0 end)"),
		 "pages_id \(.pages_id)",
		 (.extents[] | if .zero then "zero \(.start) \(.end)"
			elif .remote then "data \(.start) \(.end) remote"
			else "data \(.start) \(.end) \(.pages_off)" end),
		 "totals \(.lazy_pages) \(.zero_pages)")' "$tmp/ours.json"
}

# crit's view: pstree and inventory as decoded, extents from the model.
theirs() {
	crit decode -i "$1/pstree.img" -o "$tmp/ps.dec" || return 1
	crit decode -i "$1/inventory.img" -o "$tmp/inv.dec" || return 1
	jq -r '.entries[] | "task \(.pid) \(.ppid) \(.threads | length)"' "$tmp/ps.dec"
	jq -r '"version \(.entries[0].img_version)"' "$tmp/inv.dec"
	for pid in $(jq -r '.entries[].pid' "$tmp/ps.dec"); do
		[ -e "$1/mm-$pid.img" ] || continue
		crit decode -i "$1/mm-$pid.img" -o "$tmp/mm.dec" || return 1
		crit decode -i "$1/pagemap-$pid.img" -o "$tmp/pm.dec" || return 1
		echo "mm $pid"
		jq -n -r --slurpfile mm "$tmp/mm.dec" --slurpfile pm "$tmp/pm.dec" -f "$VIEW" ||
			return 1
	done
}

check() {
	if ! ours "$1" >"$tmp/ours.txt"; then
		echo "FAIL $1: img-dump failed"
		return 1
	fi
	if ! theirs "$1" >"$tmp/theirs.txt"; then
		echo "FAIL $1: crit decode / jq failed"
		return 1
	fi
	if ! diff -u "$tmp/theirs.txt" "$tmp/ours.txt"; then
		echo "FAIL $1: our view (+) differs from crit's (-)"
		return 1
	fi
	echo "PASS $1 ($(grep -c '^task' "$tmp/ours.txt") tasks, $(grep -c '^data\|^zero' "$tmp/ours.txt") extents)"
}

rc=0
if [ $# -eq 0 ]; then
	for fx in tree multi; do
		d=$(make_fixture $fx) || { echo "FAIL fixture $fx"; rc=1; continue; }
		check "$d" || rc=1
	done
else
	for d in "$@"; do
		check "$d" || rc=1
	done
fi
exit $rc
