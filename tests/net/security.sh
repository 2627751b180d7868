#!/bin/sh
# Security tests of lazy-wire: each attack of the security issue, played by an unprivileged
# local user (nobody, through setpriv) where it fits, against criu-imgd and its clients.
#   sh tests/net/security.sh [BUILD [HELPERS]]
# BUILD holds the programs under test (BUILD/bin/criu-imgd, BUILD/bin/criu-lazyd; default
# build). HELPERS is the build whose test programs play the other side (tests/net/attacker)
# and make the image (tests/host/restore-sim); default BUILD. An older tree is tested with
# the current helpers: sh tests/net/security.sh /tmp/old/build build
# Against a criu-imgd without keys per role (no --upload-key) its single key plays both
# roles, as it did there. Needs root (setpriv, chown). Env: SEC_ONLY (case names).
# Prints PASS/FAIL per case and "security: N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-build}
H=${2:-$B}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
case $H in /*) ;; *) H=$ROOT/$H ;; esac
IMGD=$B/bin/criu-imgd
LAZYD=$B/bin/criu-lazyd
OUT=$B/net/security
pass=0 fail=0

say() { printf '%s\n' "$*"; }
ok() { say "PASS $1"; pass=$((pass + 1)); }
bad() { say "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }
want() { [ -z "${SEC_ONLY:-}" ] || case " $SEC_ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

[ "$(id -u)" = 0 ] || { say "security: needs root (setpriv, chown)"; exit 2; }
for p in "$IMGD" "$LAZYD" "$H/tests/net/attacker" "$H/tests/host/restore-sim"; do
	[ -x "$p" ] || { say "security: $p missing: run make first"; exit 2; }
done
command -v setpriv >/dev/null || { say "security: no setpriv (util-linux)"; exit 2; }
roles=false
"$IMGD" --help 2>/dev/null | grep -q -- --upload-key && roles=true

rm -rf "$OUT"
mkdir -p "$OUT"
chmod 700 "$OUT"
# What nobody may use: the attacker program and dirs of its own, in a world-readable dir.
W=$(mktemp -d /tmp/lw-security.XXXXXX)
chmod 755 "$W"
cp "$H/tests/net/attacker" "$W/attacker"
chmod 755 "$W/attacker"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
nobody_dir() { mkdir -p "$1" && chown nobody:nogroup "$1" && chmod 700 "$1"; }
empty() { [ -d "$1" ] && [ -z "$(ls -A "$1")" ]; }

mkkey() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1"; chmod 600 "$1"; }
K=$OUT/read.key  # the readers' key (criu-imgd --auth-key)
UK=$OUT/up.key   # the publishers' key (criu-imgd --upload-key)
mkkey "$K"
mkkey "$UK"

# A root-owned image, private to root: only criu-imgd can hand it out.
mkdir -p "$OUT/sim"
"$H/tests/host/restore-sim" --scenario seq --dir "$OUT/sim" --images-only >"$OUT/sim.out" 2>&1 ||
	{ say "security: restore-sim --images-only failed: $(tail -1 "$OUT/sim.out")"; exit 2; }
IMG=$OUT/img
cp -r "$OUT/sim/img" "$IMG"
chmod 700 "$IMG"
chmod 600 "$IMG"/*

start_imgd() { # $1 name, rest: criu-imgd args; sets port, ipid ("" if it did not start)
	_n=$1
	shift
	rm -f "$OUT/$_n.port"
	(umask 022; exec "$IMGD" "$@" --port 0 -o "$OUT/$_n-imgd.log" -v4 --status-fd 3 \
		3>"$OUT/$_n.port" 2>"$OUT/$_n-imgd.err") &
	ipid=$!
	_i=0
	while [ ! -s "$OUT/$_n.port" ] && kill -0 "$ipid" 2>/dev/null && [ $_i -lt 100 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	port=$(cat "$OUT/$_n.port" 2>/dev/null)
	if [ -z "$port" ]; then
		wait "$ipid" 2>/dev/null
		ipid=""
		return 1
	fi
	PIDS="$PIDS $ipid"
}
stop_imgd() { [ -z "$ipid" ] || { kill "$ipid" 2>/dev/null; wait "$ipid" 2>/dev/null; }; ipid=""; }
# The keys of a server that takes uploads: one per role, or the single key $1 where there are
# no roles (then that key does both, which is the attack).
upload_keys() { if $roles; then echo "--auth-key $K --upload-key $UK"; else echo "--auth-key $1"; fi; }
pub_role() { if $roles; then echo publish; else echo none; fi; }
# What criu-imgd said when it stopped (stderr before the log is open, else the log).
imgd_said() { cat "$OUT/$1-imgd.err" "$OUT/$1-imgd.log" 2>/dev/null; }
imgd_why() { imgd_said "$1" | grep -v "^$" | tail -1; }

# ---- 1. an impostor on the port: root's restore by id must not take it ----
if want impostor; then
	F=$W/fake
	mkdir -p "$F"
	for f in inventory.img pstree.img core-1.img; do echo "IMPOSTOR" >"$F/$f"; done
	head -c 65536 /dev/zero | tr '\0' 'X' >"$F/pages-1.img"
	chmod -R a+rX "$F"
	nobody_dir "$W/imp"
	as_nobody "$W/attacker" impostor "$F" "$W/imp/port" 60 >"$OUT/impostor.log" 2>&1 &
	imp=$!
	PIDS="$PIDS $imp"
	i=0
	while [ ! -s "$W/imp/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	ip=$(cat "$W/imp/port" 2>/dev/null)
	r=0 why=""
	[ -n "$ip" ] || { r=1 why="the impostor did not start: $(tail -1 "$OUT/impostor.log")"; ip=1; }
	# a. Restore by id with the key (criu-lazyd --fetch-only, as the native scripts do).
	mkdir -p "$OUT/imp-dst"
	timeout 60 "$LAZYD" --fetch-only --image-server "127.0.0.1:$ip" --image img \
		--auth-key "$K" -D "$OUT/imp-dst" -o "$OUT/imp-fetch.log" -v4 >/dev/null 2>&1 &&
		{ r=1 why="the fetch from a keyless impostor succeeded"; }
	empty "$OUT/imp-dst" || { r=1 why="${why:-files from the impostor: $(ls "$OUT/imp-dst" | tr '\n' ' ')}"; }
	# b. A lazy restore whose images dir has the metadata: the page source itself.
	mkdir -p "$OUT/imp-dir" "$OUT/imp-work"
	cp "$IMG"/*.img "$OUT/imp-dir/"
	timeout 60 "$LAZYD" --image-server "127.0.0.1:$ip" --image img --auth-key "$K" \
		-D "$OUT/imp-dir" -W "$OUT/imp-work" -o "$OUT/imp-restore.log" -v4 \
		--source-retries 1 >/dev/null 2>&1 && { r=1 why="${why:-criu-lazyd served from the impostor}"; }
	# c. Without a key at all: no server can be told from an impostor.
	mkdir -p "$OUT/imp-nokey"
	timeout 60 "$LAZYD" --fetch-only --image-server "127.0.0.1:$ip" --image img \
		-D "$OUT/imp-nokey" -o "$OUT/imp-nokey.log" -v4 >/dev/null 2>&1 &&
		{ r=1 why="${why:-a fetch without a key took the impostor's files}"; }
	empty "$OUT/imp-nokey" || { r=1 why="${why:-files from the impostor without a key}"; }
	kill "$imp" 2>/dev/null
	wait "$imp" 2>/dev/null
	grep -q "got OPEN" "$OUT/impostor.log" &&
		{ r=1 why="${why:-a client opened an image on the impostor}"; }
	if [ $r = 0 ]; then
		ok "impostor: nobody's keyless criu-imgd on the port: root's fetch, restore and keyless fetch refuse it before OPEN"
	else
		bad impostor "$why"
	fi
fi

# ---- 2. nobody reads from a loopback criu-imgd ----
if want nobody-loopback; then
	r=0 why=""
	nobody_dir "$W/nob"
	# a. Started the default way, without a key: it must not serve nobody.
	if start_imgd nob-nokey -D "$IMG"; then
		as_nobody "$W/attacker" read "127.0.0.1:$port" img "$W/nob" >"$OUT/nob-nokey.out" 2>&1 &&
			{ r=1 why="nobody read root's 0600 image from a keyless criu-imgd on loopback: $(tail -1 "$OUT/nob-nokey.out")"; }
		stop_imgd
	elif ! imgd_said nob-nokey | grep -q "needs --auth-key"; then
		r=1 why="criu-imgd without a key: no clear error: $(imgd_why nob-nokey)"
	fi
	rm -rf "$W/nob"
	nobody_dir "$W/nob"
	# b. With the key (root's, 0600): nobody without it, or trying root's key file, reads nothing.
	if start_imgd nob-key -D "$IMG" --auth-key "$K"; then
		as_nobody "$W/attacker" read "127.0.0.1:$port" img "$W/nob" >"$OUT/nob-key.out" 2>&1 &&
			{ r=1 why="${why:-nobody read without the key}"; }
		as_nobody "$W/attacker" read "127.0.0.1:$port" img "$W/nob" "$K" >>"$OUT/nob-key.out" 2>&1 &&
			{ r=1 why="${why:-nobody read with root's key file}"; }
		stop_imgd
	else
		r=1 why="${why:-criu-imgd with a key did not start: $(imgd_why nob-key)}"
	fi
	[ -z "$(ls -A "$W/nob" 2>/dev/null)" ] || [ $r = 1 ] ||
		{ r=1 why="nobody got files: $(ls "$W/nob" | tr '\n' ' ')"; }
	[ $r = 0 ] && ok "nobody-loopback: criu-imgd never serves without the key, on loopback too; nobody reads nothing" ||
		bad nobody-loopback "$why"
fi

# ---- 3. the modes of what comes from the network ----
if want fetch-modes; then
	r=0 why=""
	if start_imgd modes -D "$IMG" --auth-key "$K"; then
		mkdir -p "$OUT/modes-dst"
		chmod 755 "$OUT" "$OUT/modes-dst"
		(umask 022; exec "$LAZYD" --fetch-only --image-server "127.0.0.1:$port" --image img \
			--auth-key "$K" -D "$OUT/modes-dst" -o "$OUT/modes-fetch.log" -v4) >/dev/null 2>&1 ||
			{ r=1 why="fetch: $(tail -1 "$OUT/modes-fetch.log")"; }
		stop_imgd
		n=0
		for f in "$OUT/modes-dst"/*; do
			[ -f "$f" ] || continue
			n=$((n + 1))
			m=$(stat -c %a "$f")
			[ "$m" = 600 ] || { r=1 why="${why:-$(basename "$f") fetched with mode $m}"; }
			as_nobody cat "$f" >/dev/null 2>&1 && { r=1 why="${why:-nobody reads $(basename "$f")}"; }
		done
		[ $n -gt 0 ] || { r=1 why="${why:-nothing fetched}"; }
		chmod 700 "$OUT"
	else
		r=1 why="criu-imgd did not start: $(imgd_why modes)"
	fi
	[ $r = 0 ] && ok "fetch-modes: the $n files of a restore by id are 0600 under umask 022; nobody reads none" ||
		bad fetch-modes "$why"
fi

# ---- uploads ----
SRC=$OUT/up-src
cp -r "$IMG" "$SRC"
up_start() { # $1 name, rest: more criu-imgd args; a fresh empty root $OUT/$1-root
	rm -rf "$OUT/$1-root"
	mkdir -p "$OUT/$1-root"
	_n=$1
	shift
	# shellcheck disable=SC2046
	start_imgd "$_n" --root "$OUT/$_n-root" --accept-uploads $(upload_keys "$UK") "$@"
}
publish() { # $1 name (log), $2 id, $3 source dir, [$4 hold seconds]
	"$W/attacker" publish "127.0.0.1:$port" "$2" "$3" "$UK" "$(pub_role)" ${4:-} >"$OUT/$1.out" 2>&1
}

if want upload-modes; then
	r=0 why=""
	if up_start upm; then
		publish upm job1 "$SRC" || { r=1 why="upload: $(tail -1 "$OUT/upm.out")"; }
		stop_imgd
		d=$OUT/upm-root/job1
		[ "$(stat -c %a "$d" 2>/dev/null)" = 700 ] || { r=1 why="${why:-the image dir has mode $(stat -c %a "$d" 2>/dev/null)}"; }
		for f in "$d"/*; do
			m=$(stat -c %a "$f" 2>/dev/null)
			[ "$m" = 600 ] || { r=1 why="${why:-$(basename "$f") uploaded with mode $m}"; }
		done
	else
		r=1 why="criu-imgd did not start: $(imgd_why upm)"
	fi
	[ $r = 0 ] && ok "upload-modes: a published image is a 0700 dir of 0600 files (criu-imgd under umask 022)" ||
		bad upload-modes "$why"
fi

# quota_case NAME HOLD: an upload over --upload-max is refused with the reason; with HOLD,
# the client goes on sending after the refusal and waits HOLD s before its UPLOAD_END: the
# server must still be reading (a lingering close, imgd/linger.h), or that send meets a reset
# and the client never reads why it was refused.
quota_case() {
	r=0 why=""
	q=""
	$roles && q="--upload-max 1M"
	# shellcheck disable=SC2086
	if up_start upq $q; then
		publish upq big "$SRC" $2 && { r=1 why="a 4 MB upload was published over a 1 MB quota"; }
		sleep 0.2
		grep -q -- "--upload-max" "$OUT/upq.out" || { r=1 why="${why:-no quota message: $(tail -1 "$OUT/upq.out")}"; }
		empty "$OUT/upq-root" || { r=1 why="${why:-left below the root: $(ls -A "$OUT/upq-root" | tr '\n' ' ')}"; }
		stop_imgd
	else
		r=1 why="criu-imgd did not start: $(imgd_why upq)"
	fi
	[ $r = 0 ] && ok "$1: an upload over --upload-max is refused ($(sed 's/.*: //' "$OUT/upq.out" | tail -1 | cut -c1-60)...)${2:+, the reason read ${2} s later}, nothing kept" ||
		bad "$1" "$why"
}
want upload-quota && quota_case upload-quota ""
want upload-quota-late && quota_case upload-quota-late 1

if want upload-total; then
	r=0 why=""
	q=""
	$roles && q="--upload-max 5M --upload-total 6M"
	# shellcheck disable=SC2086
	if up_start upt $q; then
		# A holds 4 MB for 3 s; B's 4 MB meanwhile is over the 6 MB of all uploads at once.
		publish upt-a jobA "$SRC" 3 &
		a=$!
		sleep 1
		publish upt-b jobB "$SRC" && { r=1 why="B was taken while A held the quota"; }
		grep -q -- "--upload-total" "$OUT/upt-b.out" || { r=1 why="${why:-B: $(tail -1 "$OUT/upt-b.out")}"; }
		wait $a || { r=1 why="${why:-A: $(tail -1 "$OUT/upt-a.out")}"; }
		# A's bytes are published, not in progress any more: C fits again.
		publish upt-c jobC "$SRC" || { r=1 why="${why:-C after A: $(tail -1 "$OUT/upt-c.out")}"; }
		sleep 0.2
		left=$(cd "$OUT/upt-root" && ls -A | tr '\n' ' ')
		[ "$left" = "jobA jobC " ] || { r=1 why="${why:-below the root: $left}"; }
		stop_imgd
	else
		r=1 why="criu-imgd did not start: $(imgd_why upt)"
	fi
	[ $r = 0 ] && ok "upload-total: a second upload over --upload-total is refused while the first holds it, taken once it is published" ||
		bad upload-total "$why"
fi

if want upload-invalid; then
	r=0 why=""
	rm -rf "$OUT/bad1" "$OUT/bad2"
	cp -r "$SRC" "$OUT/bad1"
	cp -r "$SRC" "$OUT/bad2"
	head -c 64 /dev/urandom >"$OUT/bad1/pstree.img" # garbage where the task tree is
	pm=$(ls "$OUT/bad2"/pagemap-*.img | head -1)
	truncate -s 20 "$pm" # a pagemap cut short
	if up_start upi; then
		for b in bad1 bad2; do
			publish "upi-$b" "$b" "$OUT/$b" && { r=1 why="${why:-$b was published}"; }
			grep -q "not a valid image" "$OUT/upi-$b.out" ||
				{ r=1 why="${why:-$b: $(tail -1 "$OUT/upi-$b.out")}"; }
		done
		sleep 0.2
		empty "$OUT/upi-root" || { r=1 why="${why:-left below the root: $(ls -A "$OUT/upi-root" | tr '\n' ' ')}"; }
		stop_imgd
	else
		r=1 why="criu-imgd did not start: $(imgd_why upi)"
	fi
	[ $r = 0 ] && ok "upload-invalid: a garbage pstree.img and a cut pagemap are refused by the image reader, nothing kept" ||
		bad upload-invalid "$why"
fi

if want upload-sweep; then
	r=0 why=""
	rm -rf "$OUT/ups-root" "$OUT/victim"
	mkdir -p "$OUT/ups-root/.upload-job9.42" "$OUT/ups-root/.upload-job8.7" "$OUT/victim" \
		"$OUT/ups-root/keep"
	echo partial >"$OUT/ups-root/.upload-job9.42/pages-1.img"
	echo secret >"$OUT/victim/data"
	ln -s "$OUT/victim" "$OUT/ups-root/.upload-link.1"
	# shellcheck disable=SC2046
	if start_imgd ups --root "$OUT/ups-root" --accept-uploads $(upload_keys "$UK"); then
		for d in .upload-job9.42 .upload-job8.7; do
			[ ! -e "$OUT/ups-root/$d" ] || { r=1 why="${why:-$d is still there}"; }
		done
		[ -L "$OUT/ups-root/.upload-link.1" ] && [ -f "$OUT/victim/data" ] ||
			{ r=1 why="${why:-a symlink was followed: the victim dir changed}"; }
		[ -d "$OUT/ups-root/keep" ] || { r=1 why="${why:-an image dir went}"; }
		# A second criu-imgd taking uploads into the same root would sweep the first's.
		# shellcheck disable=SC2046
		if $roles && "$IMGD" --root "$OUT/ups-root" --accept-uploads $(upload_keys "$UK") \
			--port 0 >"$OUT/ups2.out" 2>&1; then
			r=1 why="${why:-a second criu-imgd took uploads into the same root}"
		fi
		stop_imgd
	else
		r=1 why="criu-imgd did not start: $(imgd_why ups)"
	fi
	[ $r = 0 ] && ok "upload-sweep: the temp dirs of crashed uploads are removed at start (not through a symlink); one criu-imgd per root takes uploads" ||
		bad upload-sweep "$why"
fi

# ---- a key per role ----
if want role-publish-reads; then
	r=0 why=""
	if up_start rpr; then
		cp -r "$IMG" "$OUT/rpr-root/one"
		mkdir -p "$OUT/rpr-dst"
		"$LAZYD" --fetch-only --image-server "127.0.0.1:$port" --image one --auth-key "$UK" \
			-D "$OUT/rpr-dst" -o "$OUT/rpr-fetch.log" -v4 >/dev/null 2>&1 &&
			{ r=1 why="criu-lazyd read image 'one' with the publishers' key"; }
		empty "$OUT/rpr-dst" || { r=1 why="${why:-files fetched with the publishers' key}"; }
		mkdir -p "$OUT/rpr-raw"
		"$W/attacker" read "127.0.0.1:$port" one "$OUT/rpr-raw" "$UK" >"$OUT/rpr-read.out" 2>&1 &&
			{ r=1 why="${why:-read with the publishers' key: $(tail -1 "$OUT/rpr-read.out")}"; }
		# and the readers' key still reads (where there are roles: else $UK is the only key)
		mkdir -p "$OUT/rpr-ok"
		if $roles && ! "$LAZYD" --fetch-only --image-server "127.0.0.1:$port" --image one \
			--auth-key "$K" -D "$OUT/rpr-ok" -o "$OUT/rpr-ok.log" -v4 >/dev/null 2>&1; then
			r=1 why="${why:-the readers' key did not read: $(tail -1 "$OUT/rpr-ok.log")}"
		fi
		stop_imgd
	else
		r=1 why="criu-imgd did not start: $(imgd_why rpr)"
	fi
	[ $r = 0 ] && ok "role-publish-reads: the publishers' key reads nothing (criu-lazyd and a raw reader), the readers' key reads" ||
		bad role-publish-reads "$why"
fi

if want role-read-publishes; then
	r=0 why=""
	# shellcheck disable=SC2046
	if up_start rrp; then
		for role in none read publish; do
			"$W/attacker" publish "127.0.0.1:$port" "job-$role" "$SRC" "$K" "$role" \
				>"$OUT/rrp-$role.out" 2>&1 &&
				{ r=1 why="${why:-published with the readers' key (role $role)}"; }
		done
		sleep 0.2
		empty "$OUT/rrp-root" || { r=1 why="${why:-below the root: $(ls -A "$OUT/rrp-root" | tr '\n' ' ')}"; }
		stop_imgd
	else
		r=1 why="criu-imgd did not start: $(imgd_why rrp)"
	fi
	# where there are no roles, up_start gave the server $UK only: try with its one key
	if ! $roles && up_start rrp1 && "$W/attacker" publish "127.0.0.1:$port" jobx "$SRC" "$UK" none \
		>"$OUT/rrp1.out" 2>&1; then
		r=1 why="${why:-criu-imgd has one key for both roles: whoever reads publishes}"
	fi
	stop_imgd
	[ $r = 0 ] && ok "role-read-publishes: the readers' key publishes nothing (as reader, as publisher, without a role)" ||
		bad role-read-publishes "$why"
fi

if want key-rules; then
	r=0 why=""
	cp "$K" "$OUT/loose.key"
	chmod 644 "$OUT/loose.key"
	cp "$K" "$OUT/theirs.key"
	chown nobody:nogroup "$OUT/theirs.key"
	for kf in loose theirs; do
		if start_imgd "kr-$kf" -D "$IMG" --auth-key "$OUT/$kf.key"; then
			r=1 why="${why:-criu-imgd started with the $kf key file}"
			stop_imgd
		fi
	done
	imgd_said kr-loose | grep -q "has mode 0644" || { r=1 why="${why:-0644: $(imgd_why kr-loose)}"; }
	imgd_said kr-theirs | grep -q "owned by uid 65534" ||
		{ r=1 why="${why:-owner: $(imgd_why kr-theirs)}"; }
	# The client's key file too.
	if start_imgd kr-srv -D "$IMG" --auth-key "$K"; then
		mkdir -p "$OUT/kr-dst"
		"$LAZYD" --fetch-only --image-server "127.0.0.1:$port" --image img \
			--auth-key "$OUT/loose.key" -D "$OUT/kr-dst" -o "$OUT/kr-fetch.log" -v4 \
			>/dev/null 2>&1 && { r=1 why="${why:-criu-lazyd used a 0644 key file}"; }
		grep -q "has mode 0644" "$OUT/kr-fetch.log" || { r=1 why="${why:-client: $(tail -1 "$OUT/kr-fetch.log")}"; }
		stop_imgd
	fi
	# One key for both roles, or uploads without their own key: refused.
	cp "$K" "$OUT/same.key"
	if ! $roles; then
		r=1 why="${why:-criu-imgd has no --upload-key: one key reads and publishes}"
	else
		mkdir -p "$OUT/kr-root"
		"$IMGD" --root "$OUT/kr-root" --accept-uploads --auth-key "$K" --upload-key "$OUT/same.key" \
			--port 0 >"$OUT/kr-same.out" 2>&1 && { r=1 why="${why:-one key for both roles taken}"; }
		grep -q "the same key" "$OUT/kr-same.out" || { r=1 why="${why:-same key: $(tail -1 "$OUT/kr-same.out")}"; }
		"$IMGD" --root "$OUT/kr-root" --accept-uploads --auth-key "$K" \
			--port 0 >"$OUT/kr-noup.out" 2>&1 && { r=1 why="${why:-uploads without --upload-key}"; }
	fi
	[ $r = 0 ] && ok "key-rules: key files readable by others or owned by nobody are refused by criu-imgd and criu-lazyd; one key for two roles is refused" ||
		bad key-rules "$why"
fi

say "security: $pass passed, $fail failed (logs in $OUT)"
[ $fail = 0 ]
