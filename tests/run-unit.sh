#!/bin/sh
# Run every Criterion unit test binary under $1/tests/unit.
B=${1:-build}
rc=0
for t in "$B"/tests/unit/*; do
	[ -x "$t" ] || continue
	echo "== unit: $(basename "$t")"
	"$t" --jobs=1 || rc=1
done
exit $rc
