#!/usr/bin/env python3
"""pydict -m MB [-s SEED] -c CTLDIR -o RESULT

A real process image for the compression benchmark (tests/native/bench.sh, setups zpy-*): a
python3 process holding a dict of about MB megabytes of text (keys "user:N:word", values
sentences of pseudo-words drawn from a fixed vocabulary, as a cache of records would hold).
It speaks memhog's protocol (tests/workloads/memhog.c, tests/vm/lib.sh restore_run): it
reports "ready <ns> ... digest=D" with the SHA-256 of every key and value, waits; after the
restore (CTL/restored) it reports "resumed <ns>" without touching the dict; on CTL/verify it
computes the digest again over the whole dict (every page of it is read) and reports
"verify ok pages=ENTRIES ms=M at=<ns>" if it is the one it printed before the dump, else
"verify FAIL ..."; then it ticks every second. Times are CLOCK_REALTIME ns, as memhog's.
"""
import getopt
import hashlib
import os
import random
import string
import sys
import time


def main():
    mb, seed, ctl, out = 256, 1, None, None
    opts, _ = getopt.getopt(sys.argv[1:], "m:s:c:o:")
    for o, a in opts:
        if o == "-m":
            mb = int(a)
        elif o == "-s":
            seed = int(a)
        elif o == "-c":
            ctl = a
        elif o == "-o":
            out = a
    if not ctl or not out:
        print("usage: pydict -m MB [-s SEED] -c CTLDIR -o RESULT", file=sys.stderr)
        return 2

    def report(line):
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        os.write(fd, (line + "\n").encode())
        os.close(fd)

    def wait_ctl(name):
        p = os.path.join(ctl, name)
        while not os.path.exists(p):
            time.sleep(0.001)

    def digest(d):
        h = hashlib.sha256()
        for k, v in d.items():
            h.update(k.encode())
            h.update(b"\0")
            h.update(v.encode())
            h.update(b"\n")
        return h.hexdigest()

    rnd = random.Random(seed)
    letters = string.ascii_lowercase
    words = ["".join(rnd.choices(letters, k=rnd.randint(2, 11))) for _ in range(30000)]
    d = {}
    total, i, want = 0, 0, mb << 20
    while total < want:
        k = "user:%09d:%s" % (i, words[i % len(words)])
        v = " ".join(rnd.choices(words, k=rnd.randint(16, 400)))
        if i % 3 == 0:
            v += " id=%d score=%.6f" % (rnd.getrandbits(48), rnd.random())
        d[k] = v
        total += len(k) + len(v)
        i += 1
    dg = digest(d)
    report("ready %d entries=%d bytes=%d digest=%s" % (time.time_ns(), len(d), total, dg))

    wait_ctl("restored")
    report("resumed %d" % time.time_ns())
    wait_ctl("verify")
    t0 = time.time_ns()
    got = digest(d)
    t1 = time.time_ns()
    if got == dg:
        report("verify ok pages=%d ms=%d at=%d" % (len(d), (t1 - t0) // 1000000, t1))
    else:
        report("verify FAIL digest=%s, before the dump %s" % (got, dg))
    tick = 0
    while True:
        time.sleep(1)
        tick += 1
        report("tick %d %d" % (tick, time.time_ns()))


if __name__ == "__main__":
    sys.exit(main())
