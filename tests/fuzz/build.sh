#!/bin/sh
# Build the libFuzzer harnesses (tests/fuzz/README.md) with clang into build/fuzz/:
#   fuzz_images fuzz_wire_client fuzz_wire_server fuzz_lrconf fuzz_zpages fuzz_workset fuzz_store
# and the seed makers fuzz_wire_client-capture and mkseeds (tests/fuzz/mkseeds.sh).
# The project sources they need and the generated protobuf-c code are compiled here with the
# same flags (-fsanitize=fuzzer-no-link,address,undefined), into build/fuzz/obj, rebuilt when
# a source or a header it includes changed.
#
#   tests/fuzz/build.sh            build every harness
#   CC=clang-14 tests/fuzz/build.sh
set -eu
cd "$(dirname "$0")/../.."

CC=${CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
	echo "build.sh: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
fi
case "$("$CC" --version 2>/dev/null | head -1)" in
*clang*) ;;
*)
	echo "build.sh: $CC is not clang: libFuzzer needs clang" >&2
	exit 1
	;;
esac

OUT=build/fuzz
OBJ=$OUT/obj
GEN=build/gen
mkdir -p "$OBJ"

# The generated protobuf-c code, by the project's own rules.
make --no-print-directory -s $GEN/lazy-wire.pb-c.c $GEN/lazy-wire.pb-c.h \
	$GEN/criu-images.pb-c.c $GEN/criu-images.pb-c.h $GEN/imgd-status.pb-c.c $GEN/imgd-status.pb-c.h \
	$GEN/lazy-workset.pb-c.c $GEN/lazy-workset.pb-c.h

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS="-O1 -g -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -pthread $SAN"
CPPFLAGS="-I$GEN -Ilazy-pages -I. -Itests -Ikmod/include/uapi"
FUZZ="-fsanitize=fuzzer-no-link"
LIBS="-lprotobuf-c -lxxhash -lgnutls -lzstd"
# criu-imgd's objects reach ops/ (its status socket and /metrics): libmicrohttpd, json-c.
OPS_LIBS=$(pkg-config --libs libmicrohttpd json-c)
# ... and its object store (imgd/store_s3.c): libcurl.
STORE_LIBS=$(pkg-config --libs libcurl)

# obj SRC [EXTRA FLAGS...]: compile SRC into $OBJ unless up to date; prints the object.
need_build() { # OBJ SRC DEP
	[ -f "$1" ] || return 0
	[ "$2" -nt "$1" ] && return 0
	[ -f "$3" ] || return 0
	for d in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$3"); do
		[ -e "$d" ] || return 0
		[ "$d" -nt "$1" ] && return 0
	done
	return 1
}

PIDS=""
MAXJ=${JOBS:-$(nproc 2>/dev/null || echo 2)}
compile() { # SRC OBJNAME FLAGS...
	src=$1 o=$OBJ/$2.o
	shift 2
	if need_build "$o" "$src" "${o%.o}.d"; then
		echo "  CC $src -> $o"
		# shellcheck disable=SC2086
		$CC $CPPFLAGS $CFLAGS "$@" -MMD -MF "${o%.o}.d" -c -o "$o" "$src" &
		PIDS="$PIDS $!"
		set -- $PIDS
		if [ $# -ge "$MAXJ" ]; then
			wait_all
		fi
	fi
}
wait_all() {
	rc=0
	for p in $PIDS; do wait "$p" || rc=1; done
	PIDS=""
	[ $rc -eq 0 ] || {
		echo "build.sh: compile failed" >&2
		exit 1
	}
}

objs_of() { for f in "$@"; do echo "$f" | sed -e 's|^lazy-pages/||' -e 's|^plugin/|plugin_|' -e 's|/|_|g' -e 's|\.c$||'; done; }
# Every file of the layers the harnesses reach, and criu-imgd without its main().
PROJECT="$(ls lazy-pages/util/*.c lazy-pages/img/*.c lazy-pages/wire/*.c)
$(ls lazy-pages/source/source_imgd*.c) $(ls plugin/lrconf*.c) $(ls lazy-pages/imgd/*.c | grep -v /main.c)
$(ls lazy-pages/ops/*.c)"
for s in $PROJECT; do
	n=$(objs_of "$s")
	compile "$s" "$n" $FUZZ
done
for p in lazy-wire criu-images imgd-status lazy-workset; do
	compile "$GEN/$p.pb-c.c" "gen_$p" $FUZZ -Wno-unused-parameter
done
for h in fuzz_images fuzz_wire_client fuzz_wire_server fuzz_lrconf fuzz_zpages fuzz_workset fuzz_store; do
	compile "tests/fuzz/$h.c" "$h" $FUZZ -Werror
done
# The seed maker: the client harness against a live server, without libFuzzer.
compile tests/fuzz/fuzz_wire_client.c fuzz_wire_client-capture -DFUZZ_CAPTURE -Werror
compile tests/fuzz/mkseeds.c mkseeds -Werror
wait_all

o() { for n in "$@"; do printf '%s ' "$OBJ/$n.o"; done; }
WIRE="$(objs_of lazy-pages/util/*.c lazy-pages/wire/*.c) gen_lazy-wire"
IMAGES="$(objs_of lazy-pages/img/*.c) gen_criu-images gen_lazy-workset"
IMGD="$(objs_of $(ls lazy-pages/imgd/*.c | grep -v /main.c) lazy-pages/ops/*.c) gen_imgd-status"
CLIENT="$(objs_of lazy-pages/source/source_imgd*.c)"
LRCONF="$(objs_of plugin/lrconf*.c)"
CLIENT_WRAP="-Wl,--wrap=socket,--wrap=connect,--wrap=send,--wrap=getaddrinfo,--wrap=freeaddrinfo,--wrap=wire_random"

link() { # OUT OBJS LDFLAGS...
	out=$1 objs=$2
	shift 2
	echo "  LD $out"
	# shellcheck disable=SC2086
	$CC $CFLAGS -o "$out" $objs "$@"
}
F="-fsanitize=fuzzer"
link $OUT/fuzz_images "$(o fuzz_images $IMAGES $(objs_of lazy-pages/util/*.c))" $F -lprotobuf-c -lxxhash
link $OUT/fuzz_workset "$(o fuzz_workset $IMAGES $(objs_of lazy-pages/util/*.c))" $F -lprotobuf-c -lxxhash
link $OUT/fuzz_lrconf "$(o fuzz_lrconf $LRCONF $(objs_of lazy-pages/util/*.c))" $F
link $OUT/fuzz_wire_server "$(o fuzz_wire_server $WIRE $IMAGES $IMGD)" $F \
	-Wl,--wrap=wire_random $LIBS $OPS_LIBS $STORE_LIBS
link $OUT/fuzz_store "$(o fuzz_store $WIRE $IMAGES $(objs_of lazy-pages/imgd/store_manifest.c))" $F $LIBS
link $OUT/fuzz_wire_client "$(o fuzz_wire_client $WIRE $IMAGES $CLIENT)" $F $CLIENT_WRAP $LIBS
link $OUT/fuzz_zpages "$(o fuzz_zpages $WIRE $IMAGES $CLIENT)" $F $LIBS
# fuzzer-no-link objects outside libFuzzer: its weak callbacks come from the sanitizer runtime
link $OUT/fuzz_wire_client-capture "$(o fuzz_wire_client-capture $WIRE $IMAGES $CLIENT)" \
	$CLIENT_WRAP,--wrap=recv $LIBS
link $OUT/mkseeds "$(o mkseeds $WIRE $IMAGES)" $LIBS
echo "build.sh: harnesses in $OUT/"
