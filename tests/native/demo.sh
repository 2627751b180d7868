#!/bin/sh
# make demo: the guided tour of tests/vm/guest-demo.sh, natively with CRIU 4.2.1 from the sid
# root (tests/native/roots.sh); in the qemu guest (CRIU 3.17.1) only where that root is missing.
#   sh tests/native/demo.sh [MB]    (default 1024)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
. "$ROOT/tests/native/env.sh"
if ! native_env sid 2>/dev/null; then
	echo "demo: no native CRIU 4.x root ($NATIVE_ROOTS/sid; make deps makes it): running in the qemu guest"
	exec sh "$ROOT/tests/vm/run.sh" demo
fi
export VM=/tmp/criu-lazy-demo-$$
rm -rf "$VM"
trap 'rm -rf "$VM"' EXIT
DEMO_WHERE="natively on this host" \
DEMO_NOTE="(native, one run on a shared 2-core host: compare within the run)" \
	sh "$ROOT/tests/vm/guest-demo.sh" "$ROOT" "${1:-1024}"
