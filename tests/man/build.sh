#!/bin/sh
# Render the man pages: docs/man/NAME.S.scd -> OUT/NAME.S (default OUT: build/man), with scdoc
# (Debian package scdoc). The version comes from lazy-pages/util/version.h, the page date
# from the page's last commit (SOURCE_DATE_EPOCH), so that a build is reproducible.
# Usage, from the tree root: sh tests/man/build.sh [OUT]
set -eu
cd "$(dirname "$0")/../.."
out=${1:-build/man}
command -v scdoc >/dev/null || { echo "man: scdoc not found (apt-get install scdoc)" >&2; exit 1; }
version=$(sed -n 's/^#define CRIU_LAZY_VERSION "\(.*\)"$/\1/p' lazy-pages/util/version.h)
[ -n "$version" ] || { echo "man: no CRIU_LAZY_VERSION in lazy-pages/util/version.h" >&2; exit 1; }
mkdir -p "$out"
# In text lines (not requests), "-" becomes "\-" unless an escape has it ("\h'-4'"): groff breaks
# lines after "-" but not after "\-", so option and program names never break (and "\-" is
# the character to type in an option); .nh (below): no hyphenation either.
cat >"$out/.dash.sed" <<'SED'
/^[.']/!{
:a
s/\(^\|[^'\\]\)-/\1\\-/
ta
}
SED
for src in docs/man/*.scd; do
	page=$(basename "$src" .scd)
	epoch=$(git log -1 --format=%ct -- "$src" 2>/dev/null || true)
	[ -n "$epoch" ] || epoch=$(stat -c %Y "$src")
	sed "s/@VERSION@/$version/g" "$src" | SOURCE_DATE_EPOCH=$epoch scdoc >"$out/$page.tmp" ||
		{ echo "man: $src: scdoc failed" >&2; rm -f "$out/$page.tmp" "$out/.dash.sed"; exit 1; }
	sed -f "$out/.dash.sed" -e '/^\.TH /a .nh' "$out/$page.tmp" >"$out/$page"
	rm -f "$out/$page.tmp"
	echo "man: $out/$page"
done
rm -f "$out/.dash.sed"
