#!/usr/bin/env python3
# The plain-TCP yardstick of many concurrent restores (tests/native/many.sh):
#   tcp_fan.py N BYTES
# A sender process and a receiver process on loopback; the receiver opens N connections at
# once and each carries BYTES bytes, all concurrently (a thread per connection on each side).
# Prints the milliseconds from the first connect to the last byte received, or exits 1 if
# a connection delivered less than BYTES.
import os
import socket
import sys
import threading
import time

CHUNK = 1 << 20


def send_all(conn, left):
    buf = memoryview(bytes(CHUNK))
    while left > 0:
        n = min(left, CHUNK)
        conn.sendall(buf[:n])
        left -= n
    conn.close()


def sender(lsock, n, nbytes):
    conns = [lsock.accept()[0] for _ in range(n)]
    th = [threading.Thread(target=send_all, args=(c, nbytes)) for c in conns]
    for t in th:
        t.start()
    for t in th:
        t.join()


def recv_all(port, nbytes, got, i):
    c = socket.create_connection(("127.0.0.1", port))
    buf = bytearray(CHUNK)
    n = 0
    while n < nbytes:
        r = c.recv_into(buf)
        if not r:
            break
        n += r
    c.close()
    got[i] = n


def main():
    n, nbytes = int(sys.argv[1]), int(sys.argv[2])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(max(n, 128))
    port = lsock.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        sender(lsock, n, nbytes)
        os._exit(0)
    lsock.close()
    got = [0] * n
    th = [threading.Thread(target=recv_all, args=(port, nbytes, got, i)) for i in range(n)]
    t0 = time.monotonic()
    for t in th:
        t.start()
    for t in th:
        t.join()
    ms = (time.monotonic() - t0) * 1000
    _, status = os.waitpid(pid, 0)
    if status or any(g != nbytes for g in got):
        sys.exit(1)
    print(int(ms + 0.5))


main()
