#!/bin/sh
# TLS of lazy-wire (docs/protocol.md "TLS"): PSK and X.509 modes, refusals both ways, a relay
# that flips a bit after the handshake, a wrong CA and name, and one client's throughput with
# and without TLS on loopback (alternating rounds, medians).
#   sh tests/net/tls.sh BUILD IMGDIR KEY OUTDIR
# Needs certtool (package gnutls-bin) for the X.509 cases (skipped without it).
# Prints PASS/FAIL/SKIP per case and "tls: N passed, N failed, N skipped".
set -u
B=$1 IMG=$2 key=$3 OUT=$4
IMGD=$B/bin/criu-imgd
T=$B/tests/net
pass=0 fail=0 skip=0
say() { printf '%s\n' "$*"; }
ok() { say "PASS $1"; pass=$((pass + 1)); }
bad() { say "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }
skipped() { say "SKIP $1: $2"; skip=$((skip + 1)); }
want() { [ -z "${TLS_ONLY:-}" ] || case " $TLS_ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
mkdir -p "$OUT"
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done' EXIT

start_imgd() { # $1 name, rest: criu-imgd args; sets port, ipid
	n=$1
	shift
	rm -f "$OUT/$n.port"
	"$IMGD" -D "$IMG" --auth-key "$key" "$@" --port 0 -o "$OUT/$n-imgd.log" -v4 \
		--status-fd 3 3>"$OUT/$n.port" &
	ipid=$!
	PIDS="$PIDS $ipid"
	i=0
	while [ ! -s "$OUT/$n.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	port=$(cat "$OUT/$n.port" 2>/dev/null)
}
stop_imgd() { kill "$ipid" 2>/dev/null; wait "$ipid" 2>/dev/null; }
nl() { # $1 port, rest: netload options
	p=$1
	shift
	"$T/netload" --server "127.0.0.1:$p" --dir "$IMG" --key "$key" "$@"
}

if want psk; then
	start_imgd psk --tls
	nl "$port" --clients 2 --tls >"$OUT/psk.out" 2>&1
	r=$?
	stop_imgd
	if [ $r = 0 ] && grep -q "TLS 1.3, PSK" "$OUT/psk-imgd.log" &&
		grep -q "authenticated to read (TLS1.3 .* ECDHE-PSK)" "$OUT/psk-imgd.log"; then
		ok "psk: 2 clients verified through TLS 1.3 with a PSK from the key, $(grep -o 'TLS1.3 [^)]*' "$OUT/psk-imgd.log" | head -1)"
	else
		bad psk "rc $r: $(tail -2 "$OUT/psk.out")"
	fi
fi

if want plain-refused; then
	# A client without TLS against a server with it, and the reverse: refused, never served.
	start_imgd pr --tls
	nl "$port" --clients 1 --no-tls >"$OUT/pr1.out" 2>&1
	r1=$?
	stop_imgd
	start_imgd pr2 --no-tls
	nl "$port" --clients 1 --tls >"$OUT/pr2.out" 2>&1
	r2=$?
	stop_imgd
	if [ $r1 != 0 ] && grep -q "speaks TLS only" "$OUT/pr-imgd.log" &&
		! grep -q "opened image" "$OUT/pr-imgd.log" && [ $r2 != 0 ] &&
		! grep -q "opened image" "$OUT/pr2-imgd.log"; then
		ok "plain-refused: a plain client of a TLS server and a TLS client of a plain server both refused"
	else
		bad plain-refused "plain->TLS rc $r1, TLS->plain rc $r2"
	fi
fi

if want flip; then
	# A relay flips one bit of the encrypted stream after the handshake: the record fails its
	# check, the connection drops, the pages come again on a new one; never a wrong page.
	start_imgd flip --tls
	rm -f "$OUT/flip.pport"
	"$T/flipproxy" --to "127.0.0.1:$port" --raw-at 300000 --flips 1 --status-fd 3 \
		3>"$OUT/flip.pport" 2>"$OUT/flipproxy.err" &
	fpid=$!
	PIDS="$PIDS $fpid"
	i=0
	while [ ! -s "$OUT/flip.pport" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	nl "$(cat "$OUT/flip.pport")" --clients 1 --tls >"$OUT/flip.out" 2>&1
	r=$?
	kill $fpid 2>/dev/null
	stop_imgd
	n=$(grep -c "authenticated to read" "$OUT/flip-imgd.log")
	if [ $r = 0 ] && grep -q flipped "$OUT/flipproxy.err" && [ "$n" -gt 2 ]; then
		ok "flip: a bit flipped by a relay after the handshake is caught by TLS, the pages fetched again ($n sessions), every page exact"
	else
		bad flip "rc $r, $n sessions, $(cat "$OUT/flipproxy.err" | head -1)"
	fi
fi

if command -v certtool >/dev/null; then
	C=$OUT/pki
	mkdir -p "$C"
	printf 'cn = "lazy-wire test CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >"$C/ca.tmpl"
	printf 'cn = "imgd"\nip_address = "127.0.0.1"\ndns_name = "imgd.test"\ntls_www_server\nsigning_key\nexpiration_days = 2\n' >"$C/srv.tmpl"
	for ca in ca other; do
		certtool --generate-privkey --key-type=ecdsa --outfile "$C/$ca.key" 2>/dev/null
		certtool --generate-self-signed --load-privkey "$C/$ca.key" --template "$C/ca.tmpl" \
			--outfile "$C/$ca.pem" 2>/dev/null
	done
	certtool --generate-privkey --key-type=ecdsa --outfile "$C/srv.key" 2>/dev/null
	certtool --generate-certificate --load-privkey "$C/srv.key" --load-ca-certificate "$C/ca.pem" \
		--load-ca-privkey "$C/ca.key" --template "$C/srv.tmpl" --outfile "$C/srv.pem" 2>/dev/null
	chmod 600 "$C"/*.key
fi
if ! [ -s "${C:-/nonexistent}/srv.pem" ]; then
	skipped x509 "no certtool (package gnutls-bin)"
elif want x509; then
	start_imgd x509 --tls-cert "$C/srv.pem" --tls-key "$C/srv.key"
	nl "$port" --clients 1 --tls-ca "$C/ca.pem" >"$OUT/x509.out" 2>&1
	r1=$?
	nl "$port" --clients 1 --tls-ca "$C/other.pem" >"$OUT/x509-ca.out" 2>&1
	r2=$?
	nl "$port" --clients 1 --tls-ca "$C/ca.pem" --tls-name other.test >"$OUT/x509-name.out" 2>&1
	r3=$?
	nl "$port" --clients 1 --tls >"$OUT/x509-psk.out" 2>&1
	r4=$?
	stop_imgd
	if [ $r1 = 0 ] && grep -q "TLS 1.3, X.509" "$OUT/x509-imgd.log"; then
		ok "x509: verified against the CA, the server named by its IP address (SAN)"
	else
		bad x509 "rc $r1: $(tail -2 "$OUT/x509.out")"
	fi
	if [ $r2 != 0 ] && [ $r3 != 0 ] && [ $r4 != 0 ] &&
		[ "$(grep -c "opened image" "$OUT/x509-imgd.log")" = 2 ]; then
		ok "x509-refused: a server certificate of another CA, or for another name, refused; a PSK client of an X.509 server too"
	else
		bad x509-refused "other CA rc $r2, other name rc $r3, PSK rc $r4"
	fi
fi

if want throughput; then
	# One client's bulk stream, TLS and plain servers side by side, rounds alternating.
	start_imgd tp-tls --tls
	ptls=$port tpid=$ipid
	start_imgd tp-plain --no-tls
	pplain=$port
	: >"$OUT/tp-tls.txt"
	: >"$OUT/tp-plain.txt"
	for i in 1 2 3 4 5; do
		nl "$ptls" --throughput --tls >>"$OUT/tp-tls.out" 2>&1 &&
			tail -1 "$OUT/tp-tls.out" | awk '{print $2}' >>"$OUT/tp-tls.txt"
		nl "$pplain" --throughput --no-tls >>"$OUT/tp-plain.out" 2>&1 &&
			tail -1 "$OUT/tp-plain.out" | awk '{print $2}' >>"$OUT/tp-plain.txt"
	done
	stop_imgd
	ipid=$tpid
	stop_imgd
	med() { sort -n "$1" | awk '{v[NR]=$1} END {print NR ? v[int((NR+1)/2)] : 0}'; }
	mt=$(med "$OUT/tp-tls.txt") mp=$(med "$OUT/tp-plain.txt")
	cipher=$(grep -o 'TLS1.3 [^)]*' "$OUT/tp-tls.out" | head -1)
	aesni=$(grep -o -m1 -w aes /proc/cpuinfo | head -1)
	if [ "$(wc -l <"$OUT/tp-tls.txt")" = 5 ] && [ "$(wc -l <"$OUT/tp-plain.txt")" = 5 ]; then
		ok "throughput (loopback, 1 client, medians of 5 alternating): TLS $mt MiB/s, plain $mp MiB/s, ratio $(awk "BEGIN {printf \"%.2f\", $mt / $mp}") ($cipher; CPU AES-NI: ${aesni:-no})"
	else
		bad throughput "$(tail -1 "$OUT/tp-tls.out") / $(tail -1 "$OUT/tp-plain.out")"
	fi
fi

say "tls: $pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
