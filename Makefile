# criu-lazy: lazy-pages restore for CRIU.
#
#   make            build everything under build/
#   make deps       install the Debian packages we build, test and demo with
#   make test       unit + host integration + native CRIU 4.x + VM end-to-end tests
#   make check      unit + host integration tests only (no real CRIU)
#   make storetest  criu-imgd over a real S3 store: a single-node Ceph + radosgw (tests/store/)
#   make nativetest end-to-end tests with real CRIU 4.1.1 and 4.2.1 (and runc) on this host
#   make vmtest     VM end-to-end tests with real CRIU 3.17.1 (qemu guest)
#   make bench      native benchmark (CRIU 4.2.1), then the VM one (bench-native, bench-vm)
#   make bench-fill parallel fill: drain of 1 and 4 GB, threads vs 1 thread vs criu lazy-pages
#   make plot-timeline  bytes installed over time, old vs current build (docs/img/stream-timeline.png)
#   make demo       dump a workload and restore it lazily with criu-lazyd (natively, CRIU 4.2.1)
#   make install    install binaries (PREFIX, DESTDIR)
#   make fuzz       libFuzzer harnesses (clang), 60 s each (FUZZ_SECONDS); long runs: tests/fuzz/README.md
#   SANITIZE=1      build and test with AddressSanitizer + UBSan (into build-san/)

PREFIX ?= /usr/local
DESTDIR ?=
CRIU_PLUGIN_DIR ?= /usr/lib/criu
DOCDIR ?= $(PREFIX)/share/doc/criu-lazy
CC ?= cc

ifeq ($(SANITIZE),1)
B := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
B := build
SANFLAGS :=
endif

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -fPIC $(SANFLAGS)
NL_CFLAGS = $(shell pkg-config --cflags libnl-genl-3.0 2>/dev/null)
NL_LIBS = $(shell pkg-config --libs libnl-genl-3.0 2>/dev/null)
CPPFLAGS += -I$(B)/gen -Ilazy-pages -I. -Itests -Ikmod/include/uapi $(NL_CFLAGS)
LDFLAGS += -pthread $(SANFLAGS)
LIBS = -lprotobuf-c -lxxhash -lgnutls -lzstd $(NL_LIBS)

# Kernel headers for lazyfill.ko: the newest installed, unless KDIR is given. These and the
# pkg-config flags are expanded when used, so that `make deps demo` works on a fresh machine.
KVER ?= $(shell ls /lib/modules 2>/dev/null | sort -V | tail -1)
KDIR ?= /lib/modules/$(KVER)/build

PROTOS := $(wildcard proto/*.proto)
GEN_C := $(patsubst proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)

# The layers of lazy-pages/ (docs/architecture.md), each a static library; a layer uses only
# the ones before it: util <- img <- wire <- source; util <- fill; util <- ops (the daemons'
# status socket and metrics endpoint). tests/layers.sh checks it.
LAYERS := util img wire source fill ops
layer_obj = $(patsubst %.c,$(B)/obj/%.o,$(wildcard lazy-pages/$(1)/*.c))
LIB_util := $(B)/lib/libutil.a
LIB_img := $(B)/lib/libimg.a
LIB_wire := $(B)/lib/libwire.a
LIB_source := $(B)/lib/libsource.a
LIB_fill := $(B)/lib/libfill.a
LIB_ops := $(B)/lib/libops.a
# ops/ stands on libmicrohttpd and json-c: only the daemons (and the tests) link them.
OPS_LIBS = $(shell pkg-config --libs libmicrohttpd json-c 2>/dev/null)
# criu-imgd's object store stands on libcurl (imgd/store_s3.c) and, for rados://, on librados
# (imgd/store_rados*.c: librados-dev's header at build time, librados.so.2 loaded with dlopen
# only when such a store is opened; criu-imgd does not link it).
STORE_LIBS = $(shell pkg-config --libs libcurl 2>/dev/null)
GEN_OBJ := $(GEN_C:.c=.o)

LAZYD_SRC := $(wildcard lazy-pages/lazyd/*.c)
LAZYD_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(LAZYD_SRC))
IMGD_SRC := $(wildcard lazy-pages/imgd/*.c)
IMGD_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(IMGD_SRC))
PLUGIN_SRC := $(wildcard plugin/*.c)
PLUGIN_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(PLUGIN_SRC))
TESTLIB_SRC := $(wildcard tests/lib/*.c)

# The daemons' and the plugin's code without their entry points, for the tests.
LIB_lazyd := $(B)/lib/liblazyd.a
LIB_imgd := $(B)/lib/libimgd.a
LIB_plugin := $(B)/lib/libplugin.a
LIB_test := $(B)/lib/libtest.a

# What each program links, in link order.
LAZYD_LIBS := $(LIB_ops) $(LIB_source) $(LIB_fill) $(LIB_wire) $(LIB_img) $(LIB_util)
IMGD_LIBS := $(LIB_ops) $(LIB_wire) $(LIB_img) $(LIB_util)
PLUGIN_LIBS := $(LIB_wire) $(LIB_img) $(LIB_util)
TEST_LIBS := $(LIB_test) $(LIB_lazyd) $(LIB_imgd) $(LIB_plugin) $(LIB_ops) $(LIB_source) \
	$(LIB_fill) $(LIB_wire) $(LIB_img) $(LIB_util)

UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
HOST_SRC := $(wildcard tests/host/*.c)
HOST_BIN := $(patsubst tests/host/%.c,$(B)/tests/host/%,$(HOST_SRC))
NET_SRC := $(wildcard tests/net/*.c)
NET_BIN := $(patsubst tests/net/%.c,$(B)/tests/net/%,$(NET_SRC))
# lazyfill.ko guest tests and benchmark (run in the qemu guest by tests/kmod/run.sh).
KMODT_SRC := $(wildcard tests/kmod/*.c)
KMODT_BIN := $(patsubst tests/kmod/%.c,$(B)/tests/kmod/%,$(KMODT_SRC))
# Workloads are dumped by real CRIU in the guest: never sanitized.
WORK_SRC := $(wildcard tests/workloads/*.c)
WORK_BIN := $(patsubst tests/workloads/%.c,build/tests/workloads/%,$(WORK_SRC))

BINS := $(B)/bin/criu-lazyd $(if $(IMGD_SRC),$(B)/bin/criu-imgd)
PLUGIN := $(if $(PLUGIN_SRC),$(B)/lib/criu/lazy_restore.so)

.SECONDARY: $(GEN_C) $(GEN_H)

.PHONY: all deps test check layercheck unit hosttest storetest bench-store bench-fleet nativetest crashtest vmtest bench bench-native bench-ws bench-fill bench-vm bench-net bench-kmod demo install clean format kmod kmodtest fuzz man mancheck install-systemd
all: $(BINS) $(PLUGIN) $(UNIT_BIN) $(HOST_BIN) $(NET_BIN) $(WORK_BIN) $(KMODT_BIN) kmod-if-headers

deps:
	sh tests/deps.sh

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/gen
	protoc-c --proto_path=proto --c_out=$(B)/gen $<

$(B)/gen/%.pb-c.o: $(B)/gen/%.pb-c.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-unused-parameter -c -o $@ $<

$(B)/obj/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIB_util): $(call layer_obj,util)
$(LIB_img): $(call layer_obj,img) $(GEN_OBJ)
$(LIB_wire): $(call layer_obj,wire)
$(LIB_source): $(call layer_obj,source)
$(LIB_fill): $(call layer_obj,fill)
$(LIB_ops): $(call layer_obj,ops)
$(LIB_lazyd): $(filter-out %/main.o,$(LAZYD_OBJ))
$(LIB_imgd): $(filter-out %/main.o,$(IMGD_OBJ))
$(LIB_plugin): $(filter-out %/lazy_restore.o,$(PLUGIN_OBJ))
$(LIB_test): $(patsubst %.c,$(B)/obj/%.o,$(TESTLIB_SRC))
$(B)/lib/%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/bin/criu-lazyd: $(LAZYD_OBJ) $(LAZYD_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(LAZYD_OBJ) $(LAZYD_LIBS) $(LIBS) $(OPS_LIBS)

$(B)/bin/criu-imgd: $(IMGD_OBJ) $(IMGD_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(IMGD_OBJ) $(IMGD_LIBS) $(LIBS) $(OPS_LIBS) $(STORE_LIBS)

# The plugin also looks for criu-lazyd in PREFIX/bin (after the one beside itself, before $PATH).
$(PLUGIN_OBJ): CPPFLAGS += -DLR_BINDIR='"$(PREFIX)/bin"'

$(B)/lib/criu/lazy_restore.so: $(PLUGIN_OBJ) $(PLUGIN_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -Wl,--no-undefined -o $@ $(PLUGIN_OBJ) $(PLUGIN_LIBS) $(LIBS)

# The kernel module builds out of tree into build/kmod (never build-san).
kmod:
	@test -f kmod/Makefile || { echo "kmod: no kmod/Makefile yet"; exit 1; }
	@test -d $(KDIR) || { echo "kmod: no kernel headers at $(KDIR) (make deps, or KDIR=)"; exit 1; }
	$(MAKE) -C kmod KDIR=$(KDIR) OUT=$(CURDIR)/build/kmod

.PHONY: kmod-if-headers
kmod-if-headers:
	@if [ -f kmod/Makefile ] && [ -d $(KDIR) ]; then $(MAKE) --no-print-directory kmod; \
	elif [ -f kmod/Makefile ]; then echo "notice: no kernel headers at $(KDIR): lazyfill.ko not built"; fi

$(B)/tests/unit/%: tests/unit/%.c $(TEST_LIBS) $(GEN_H)
	@mkdir -p $(dir $@) $(B)/obj/tests/unit
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -MF $(B)/obj/tests/unit/$*.d -o $@ $< $(TEST_LIBS) $(LDFLAGS) $(LIBS) $(OPS_LIBS) $(STORE_LIBS) -lcriterion

# Every tests/host/*.c and tests/kmod/*.c is a program; their helpers are libraries from
# subfolders: restore-sim's parts (tests/host/sim/), the guest tests' kt (tests/kmod/kt/).
LIB_sim := $(B)/lib/libsim.a
LIB_kt := $(B)/lib/libkt.a
$(LIB_sim): $(patsubst %.c,$(B)/obj/%.o,$(wildcard tests/host/sim/*.c))
$(LIB_kt): $(patsubst %.c,$(B)/obj/%.o,$(wildcard tests/kmod/kt/*.c))

$(B)/tests/host/%: tests/host/%.c $(LIB_sim) $(TEST_LIBS) $(GEN_H)
	@mkdir -p $(dir $@) $(B)/obj/tests/host
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -MF $(B)/obj/tests/host/$*.d -o $@ $< $(LIB_sim) $(TEST_LIBS) $(LDFLAGS) $(LIBS) $(OPS_LIBS) $(STORE_LIBS)

$(B)/tests/net/%: tests/net/%.c $(TEST_LIBS) $(GEN_H)
	@mkdir -p $(dir $@) $(B)/obj/tests/net
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -MF $(B)/obj/tests/net/$*.d -o $@ $< $(TEST_LIBS) $(LDFLAGS) $(LIBS) $(OPS_LIBS) $(STORE_LIBS)

$(B)/tests/kmod/%: tests/kmod/%.c tests/kmod/kt/kt.h $(LIB_kt) $(TEST_LIBS) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_kt) $(TEST_LIBS) $(LDFLAGS) $(LIBS) $(OPS_LIBS) $(STORE_LIBS)

build/tests/workloads/%: tests/workloads/%.c $(wildcard tests/workloads/*.h)
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $<

unit: $(UNIT_BIN)
	sh tests/run-unit.sh $(B)

hosttest: all
	@rc=0; sh tests/host/run.sh $(B) || rc=1; sh tests/net/run.sh $(B) || rc=1; \
	sh tests/security/lpsock.sh $(B) || rc=1; sh tests/metrics/lazyd.sh $(B) || rc=1; \
	sh tests/metrics/imgd.sh $(B) || rc=1; exit $$rc

# Man pages (scdoc) into $(B)/man; mancheck: they render cleanly and match --help and
# criu.conf.example; the systemd unit passes systemd-analyze.
man:
	sh tests/man/build.sh $(B)/man

mancheck: all man
	sh tests/man/check.sh $(B)
	sh tests/systemd/check.sh $(B)

# The one-way rule between the folders of lazy-pages/, file sizes, include circles.
layercheck:
	sh tests/layers.sh

check: layercheck unit hosttest mancheck

test: check storetest nativetest vmtest

# criu-imgd --store against a real single-node Ceph cluster and radosgw that the script starts
# on 127.0.0.1 and stops (tests/store/run.sh; about 40 s), with real CRIU 4.2.1 natively.
storetest: all
	bash tests/store/run.sh

# Page throughput from an S3-backed criu-imgd against a directory-backed one, 1 GB, cold and
# warm chunk cache (tests/store/bench.sh; figures in docs/store.md).
bench-store: all
	bash tests/store/bench.sh

# N clients of one image through 1 and 2 S3-backed criu-imgd instances (issue 15).
bench-fleet: all
	bash tests/store/fleet-bench.sh

# Real CRIU 4.x (and runc) natively, from the roots that make deps makes (tests/native/).
nativetest: all
	@rc=0; sh tests/native/run.sh || rc=1; sh tests/native/crash.sh || rc=1; exit $$rc

# A worker (or daemon) SIGKILLed at random points of real lazy restores (issue 12).
crashtest: all
	sh tests/native/crash.sh

# Every VM suite runs even if one fails; the module must have been built (make deps gets headers).
vmtest: all
	@rc=0; sh tests/vm/run.sh || rc=1; sh tests/vm/run.sh plugin || rc=1; \
	sh tests/vm/run.sh net || rc=1; \
	if [ -f build/kmod/lazyfill.ko ]; then \
		sh tests/kmod/run.sh test || rc=1; sh tests/kmod/run.sh e2e || rc=1; \
	else echo "vmtest: build/kmod/lazyfill.ko was not built: its tests cannot run"; rc=1; fi; \
	exit $$rc

# The parsers of hostile input under libFuzzer (clang, ASan, UBSan): build/fuzz/.
FUZZ_SECONDS ?= 60
fuzz: $(GEN_H)
	sh tests/fuzz/build.sh
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: bench-native bench-vm

bench-native: all
	sh tests/native/bench.sh
	sh tests/native/wsbench.sh
	sh tests/native/fillbench.sh 2

# Working-set replay (issue 13): a 1 GB task reading a fixed random 6% of its memory, restored
# three times in a row from local images and across a 1 Gbit/s link (about 2 minutes a round).
bench-ws: all
	sh tests/native/wsbench.sh

bench-fill: all
	sh tests/native/fillbench.sh 2

bench-vm: all
	sh tests/vm/run.sh bench

# Native first (criu-imgd behind a veth shaped to 1 Gbit/s, against plain TCP on the same
# link, 256 MB and 1 GB; then fault latency and a sequential reader at 1 and 10 ms RTT through
# tests/net/delayproxy on that link, issue 11), then the guest's (CRIU's own page server,
# netem latency; then a 256 MB task that forks right after restore, against CRIU's own pair:
# about 6 minutes). Also 32 restores at once of one 64 MB image through one criu-imgd (many).
bench-net: all
	NATIVE_BENCH_SETUPS="link tcp" NATIVE_BENCH_THREADS=1 NATIVE_BENCH_MB=256 sh tests/native/bench.sh 3
	NATIVE_BENCH_SETUPS="link tcp" NATIVE_BENCH_THREADS=1 NATIVE_BENCH_MB=1024 sh tests/native/bench.sh 3
	NATIVE_BENCH_SETUPS=latency NATIVE_BENCH_THREADS=1 NATIVE_BENCH_MB=256 sh tests/native/bench.sh 3
	NATIVE_BENCH_SETUPS=many sh tests/native/bench.sh 3
	bash tests/store/bench.sh
	bash tests/store/fleet-bench.sh
	sh tests/vm/run.sh netbench
	sh tests/vm/run.sh forkbench

# The stream over time (issue 11): bytes installed during 1 GB restores from local images,
# criu-imgd on loopback and across a 1 Gbit/s link, 6cd98b6 (built apart) vs this tree, as
# docs/img/stream-timeline.dat and .png. gnuplot is installed for this target only.
.PHONY: plot-timeline plot-timeline-png plot-deps
TIMELINE_GP = gnuplot -e "dat='docs/img/stream-timeline.dat'; png='docs/img/stream-timeline.png'" tests/native/timeline.gp
plot-timeline: all plot-deps
	sh tests/native/timeline.sh
	$(TIMELINE_GP)

# Only the PNG, from the data file as it is.
plot-timeline-png: plot-deps
	$(TIMELINE_GP)

plot-deps:
	@command -v gnuplot >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends gnuplot-nox || \
		{ apt-get update -q && apt-get install -y -q --no-install-recommends gnuplot-nox; }; }

# lazyfill.ko in the guest: module tests, real-CRIU restores through it, the benchmark.
kmodtest: all kmod
	sh tests/kmod/run.sh test
	sh tests/kmod/run.sh e2e

bench-kmod: all kmod
	sh tests/kmod/bench-kmod

demo: all
	sh tests/native/demo.sh

install: $(BINS) $(PLUGIN) man
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(CRIU_PLUGIN_DIR)
	install -m 0644 $(PLUGIN) $(DESTDIR)$(CRIU_PLUGIN_DIR)/
	install -d $(DESTDIR)$(DOCDIR)
	install -m 0644 criu.conf.example docs/plugin.md $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0644 $(B)/man/criu-lazyd.8 $(B)/man/criu-imgd.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 $(B)/man/lazy-restore.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/

# criu-imgd under systemd (dist/systemd): then systemd-sysusers, the keys, systemctl enable.
SYSTEMD_UNITDIR ?= /etc/systemd/system
install-systemd:
	install -d $(DESTDIR)$(SYSTEMD_UNITDIR) $(DESTDIR)/etc/sysusers.d $(DESTDIR)/etc/default $(DESTDIR)$(DOCDIR)
	sed 's|^ExecStart=/usr/local/bin/|ExecStart=$(PREFIX)/bin/|' dist/systemd/criu-imgd.service > $(DESTDIR)$(SYSTEMD_UNITDIR)/criu-imgd.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNITDIR)/criu-imgd.service
	install -m 0644 dist/sysusers.d/criu-imgd.conf $(DESTDIR)/etc/sysusers.d/
	test -e $(DESTDIR)/etc/default/criu-imgd || install -m 0644 dist/systemd/criu-imgd.default $(DESTDIR)/etc/default/criu-imgd
	install -m 0644 dist/systemd/criu-imgd-as-root.conf $(DESTDIR)$(DOCDIR)/

format:
	clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^kmod/')

clean:
	rm -rf build build-san

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
