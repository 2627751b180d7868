#!/bin/sh
# The man pages against the programs: run from the tree root after `make` (sh tests/man/check.sh
# [BUILD_DIR], default build). Renders docs/man/*.scd into BUILD_DIR/man (tests/man/build.sh),
# then checks:
#   - every page renders with `man -l` without a warning (--warnings, and every groff warning),
#     and fits 80 columns;
#   - criu-lazyd(8) and criu-imgd(8) list under OPTIONS exactly the options of --help (long and
#     short; a --word in --help counts when the program takes it, so criu's --lazy-pages in a
#     description does not), and every option line of --help names options the program takes;
#   - lazy-restore.conf(5) lists under KEYS exactly the plugin's keys in criu.conf.example
#     (section 2), and under CRIU OPTIONS exactly CRIU's options there (section 1);
#   - --version prints "PROGRAM VERSION" with the version of lazy-pages/util/version.h, and
#     every page carries that version.
# Needs scdoc, man-db and groff-base. Prints PASS/FAIL lines and "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
B=${1:-build}
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
MAN=$B/man
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for t in scdoc man groff col; do
	command -v $t >/dev/null || { echo "FAIL: $t not found (apt-get install scdoc man-db groff-base bsdextrautils)"; exit 1; }
done
version=$(sed -n 's/^#define CRIU_LAZY_VERSION "\(.*\)"$/\1/p' lazy-pages/util/version.h)

if sh tests/man/build.sh "$MAN" >"$tmp/build.log" 2>&1; then
	ok "pages rendered into $MAN"
else
	bad "tests/man/build.sh: $(cat "$tmp/build.log")"
	echo "$pass passed, $fail failed"
	exit 1
fi

# The page as text, 80 columns, no overstrikes, spaces not tabs.
text() { MANWIDTH=80 man -l "$1" 2>/dev/null | col -bx; }
# The first lines of the entries of section $2 of the text in $1: 7 columns in, with the
# entry's text (11 columns in) right below (a paragraph's lines are followed by a blank line).
terms() {
	awk -v s="$2" '/^[A-Z]/ { cur = $0; prev = ""; next }
		cur == s && /^           [^ ]/ && prev ~ /^       [^ ]/ { print prev }
		{ prev = $0 }' "$1"
}
# Options named in lines on stdin: long ones, and short ones (-D, -v[N]).
opts() {
	grep -o -e '--[a-z][a-z0-9-]*' -e '\(^\|[ ,]\)-[A-Za-z]\([]=, []\|$\)' |
		sed -e 's/^[ ,]*//' -e 's/[]=, []*$//' | sort -u
}
# Does PROGRAM take --OPT? (an empty work dir; a value-taking option eats --version)
takes() {
	(cd "$tmp/run" && timeout 10 "$1" "$2" --version </dev/null 2>&1) |
		grep -q "unknown option '$2'" && return 1
	return 0
}
mkdir -p "$tmp/run"

for page in "$MAN"/*.[0-9]; do
	name=$(basename "$page")
	w=$(MANWIDTH=80 man -l --warnings "$page" 2>&1 >/dev/null)
	if [ -z "$w" ]; then ok "$name renders without warnings"; else bad "$name: $w"; fi
	w=$(MANWIDTH=80 man -l --warnings=w "$page" 2>&1 >/dev/null)
	if [ -z "$w" ]; then ok "$name renders without any groff warning (-ww)"; else bad "$name (-ww): $w"; fi
	long=$(text "$page" | awk 'length > 80 { n++ } END { print n + 0 }')
	if [ "$long" -eq 0 ]; then ok "$name fits 80 columns"; else bad "$name: $long lines wider than 80 columns"; fi
	if text "$page" | tail -n 1 | grep -q "criu-lazy $version"; then
		ok "$name carries version $version"
	else
		bad "$name does not carry version $version"
	fi
done

for prog in criu-lazyd criu-imgd; do
	bin=$B/bin/$prog
	page=$MAN/$prog.8
	if [ ! -x "$bin" ]; then
		bad "$bin not built (make)"
		continue
	fi
	v=$("$bin" --version 2>&1)
	if [ "$v" = "$prog $version" ]; then ok "$prog --version: $v"; else bad "$prog --version: '$v', not '$prog $version'"; fi
	"$bin" --help >"$tmp/help" 2>&1 || bad "$prog --help exits non-zero"
	# Options of the option lines (the part before the description), each must be taken.
	sed -n 's/^ \{2,\}\(-[^ ].*\)$/\1/p' "$tmp/help" | sed 's/  .*//' | opts >"$tmp/optlines"
	# Every --word in --help that the program takes, and the short options of option lines.
	: >"$tmp/help.opts"
	for o in $(opts <"$tmp/help" | grep -e '^--'); do
		if takes "$bin" "$o"; then
			echo "$o" >>"$tmp/help.opts"
		elif grep -qx -e "$o" "$tmp/optlines"; then
			bad "$prog --help lists $o, which $prog does not take"
		fi
	done
	grep -v -e '^--' "$tmp/optlines" >>"$tmp/help.opts"
	sort -u -o "$tmp/help.opts" "$tmp/help.opts"
	text "$page" >"$tmp/page"
	terms "$tmp/page" OPTIONS | opts >"$tmp/page.opts"
	missing=$(comm -23 "$tmp/help.opts" "$tmp/page.opts" | tr '\n' ' ')
	extra=$(comm -13 "$tmp/help.opts" "$tmp/page.opts" | tr '\n' ' ')
	n=$(wc -l <"$tmp/help.opts")
	if [ -z "$missing" ]; then ok "$prog.8 documents all $n options of --help"; else bad "$prog.8 lacks options of --help: $missing"; fi
	if [ -z "$extra" ]; then ok "$prog.8 documents no option that --help lacks"; else bad "$prog.8 documents options --help lacks: $extra"; fi
done

# criu.conf.example: section 1 (CRIU's options), section 2 (the plugin's keys), "#key value".
keys() {
	awk -v s="$1" '/^# ---- [0-9]\./ { cur = $3 } cur == s "." && /^#[a-z]/ {
		sub(/^#/, ""); print $1 }' criu.conf.example | sort -u
}
page=$MAN/lazy-restore.conf.5
text "$page" >"$tmp/conf"
for sec in "2 KEYS" "1 CRIU OPTIONS"; do
	n=${sec%% *}
	s=${sec#* }
	keys "$n" >"$tmp/ex.keys"
	terms "$tmp/conf" "$s" | awk '{ print $1 }' | sort -u >"$tmp/page.keys"
	missing=$(comm -23 "$tmp/ex.keys" "$tmp/page.keys" | tr '\n' ' ')
	extra=$(comm -13 "$tmp/ex.keys" "$tmp/page.keys" | tr '\n' ' ')
	c=$(wc -l <"$tmp/ex.keys")
	if [ "$c" -gt 0 ] && [ -z "$missing" ]; then
		ok "lazy-restore.conf.5 $s: all $c keys of criu.conf.example section $n"
	else
		bad "lazy-restore.conf.5 $s lacks keys of criu.conf.example section $n: ${missing:-(none found in the example)}"
	fi
	if [ -z "$extra" ]; then
		ok "lazy-restore.conf.5 $s: no key that criu.conf.example section $n lacks"
	else
		bad "lazy-restore.conf.5 $s has keys criu.conf.example section $n lacks: $extra"
	fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
