#!/usr/bin/env python3
"""Reference output of the word-count example, computed without Weir.

Every occurrence of a word emits the word's running count, so the output is,
for each word w seen n times, the lines "w<TAB>1" ... "w<TAB>n". Lines are
sorted because parallel subtasks interleave them.
"""
import re, sys
from collections import Counter

counts = Counter()
out = []
for line in open(sys.argv[1] if len(sys.argv) > 1 else "input.txt"):
    for w in re.findall(r"[a-z0-9]+", line.lower()):
        counts[w] += 1
        out.append(f"{w}\t{counts[w]}")
print("\n".join(sorted(out)))
