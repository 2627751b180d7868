#!/bin/sh
# The one-way rule of lazy-pages/ (docs/architecture.md): a folder includes headers only from
# itself (a bare "name.h") and from the layers below it. Also: no file over 600 lines, no
# include circle inside a folder. Prints each violation; exit 1 if any.
cd "$(dirname "$0")/.."

# folder: the folders it may include from
allowed() {
	case $1 in
	util) echo "" ;;
	img) echo "util" ;;
	wire) echo "util img" ;;
	source) echo "util img wire" ;;
	fill) echo "util" ;;
	ops) echo "util" ;;
	lazyd) echo "util img wire source fill ops" ;;
	imgd) echo "util img wire ops" ;;
	plugin) echo "util img wire" ;;
	*) echo "?" ;;
	esac
}

bad=0
for f in $(find lazy-pages plugin -name '*.[ch]' | sort); do
	dir=$(dirname "$f")
	layer=$(basename "$dir")
	ok=$(allowed "$layer")
	if [ "$ok" = "?" ]; then
		echo "layers: $f: folder $layer is not in the rule (tests/layers.sh, docs/architecture.md)"
		bad=1
		continue
	fi
	for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
		case $inc in
		*.pb-c.h) continue ;; # generated from proto/
		*/*)
			from=${inc%%/*}
			[ "$from" = "$layer" ] && {
				echo "layers: $f: include \"$inc\": within a folder, say \"${inc#*/}\""
				bad=1
				continue
			}
			case " $ok " in
			*" $from "*) ;;
			*)
				echo "layers: $f ($layer) includes \"$inc\" ($from): $layer may use only: ${ok:-nothing}"
				bad=1
				;;
			esac
			;;
		*)
			[ -f "$dir/$inc" ] || {
				echo "layers: $f: include \"$inc\" is not in $dir"
				bad=1
			}
			;;
		esac
	done
	n=$(wc -l <"$f")
	if [ "$n" -gt 600 ]; then
		echo "layers: $f has $n lines (at most 600: split it by job)"
		bad=1
	fi
done

# Include circles among a folder's own headers (a depth-first walk).
for dir in $(find lazy-pages plugin -type d | sort); do
	edges=$(for h in "$dir"/*.h; do
		[ -f "$h" ] || continue
		for inc in $(sed -n 's/^#include "\([^"/]*\)".*/\1/p' "$h"); do
			[ -f "$dir/$inc" ] && echo "$(basename "$h") $inc"
		done
	done)
	[ -n "$edges" ] || continue
	if ! echo "$edges" | tsort >/dev/null 2>&1; then
		echo "layers: include circle among the headers of $dir:"
		echo "$edges" | tsort 2>&1 >/dev/null | sed 's/^/  /'
		bad=1
	fi
done
[ $bad -eq 0 ] && echo "layers: the one-way rule holds, no file over 600 lines, no include circle"
exit $bad
