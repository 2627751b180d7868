#!/usr/bin/env python3
"""sparse-cmp.py SRC DST: every data region of DST (SEEK_DATA/SEEK_HOLE) equals SRC there,
and DST has holes (lazy data never fetched). Prints the split; exit 1 on a mismatch."""
import os
import sys

src, dst = sys.argv[1], sys.argv[2]
size = os.path.getsize(dst)
data = 0
with open(src, "rb") as s, open(dst, "rb") as d:
    fd = d.fileno()
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        s.seek(start)
        d.seek(start)
        if s.read(end - start) != d.read(end - start):
            print(f"data at {start}..{end} differs from the source")
            sys.exit(1)
        data += end - start
        off = end
print(f"{data} of {size} bytes fetched, {size - data} left as holes")
if size and data >= size:
    print("no holes: the lazy data was fetched")
    sys.exit(1)
