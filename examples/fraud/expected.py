#!/usr/bin/env python3
"""Reference output of the fraud example, computed without Weir.

Per account, in file order (the source has parallelism 1):
- if the account is flagged (a small transaction was seen and its timer has
  not fired), this amount > 500.00 and this transaction is at most 60 000 ms
  after the small one (event time: the timer may not have fired yet when a
  later record arrives, because the watermark lags by the out-of-orderness
  bound): alert
  "alert,<account>,<small amount>,<large amount>,<ts of large>";
  a flagged account is unflagged by any transaction (and its timer deleted);
- if amount < 1.00: flag the account with this amount and set a timer at
  ts + 60000 that unflags it.
Watermarks are punctuated, 5 s out-of-orderness: after a record that raises
the maximum timestamp M the watermark is M - 5001, and every timer <= the
watermark fires (before the next record). Amounts print as Go's
strconv.FormatFloat(x, 'f', -1, 64), which for these inputs equals Python's
repr with a trailing ".0" removed.
"""
import json, sys

def fmt(x):
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s

flag, timer = {}, {}
wm, max_ts = -(1 << 63), -(1 << 63)
out = []

def fire(upto):
    for acc, t in sorted(timer.items(), key=lambda kv: kv[1]):
        if t <= upto:
            del timer[acc]
            flag.pop(acc, None)

for line in open(sys.argv[1] if len(sys.argv) > 1 else "input.jsonl"):
    if not line.strip():
        continue
    r = json.loads(line)
    acc, amt, ts = r["account"], r["amount"], r["ts"]
    if acc in flag:
        small, small_ts = flag[acc]
        if amt > 500.0 and 0 <= ts - small_ts <= 60000:
            out.append(f"alert,{acc},{fmt(small)},{fmt(amt)},{ts}")
        del flag[acc]
        timer.pop(acc, None)
    if amt < 1.0:
        flag[acc] = (amt, ts)
        timer[acc] = ts + 60000
    if ts > max_ts:
        max_ts = ts
        if max_ts - 5001 > wm:
            wm = max_ts - 5001
            fire(wm)
print("\n".join(sorted(out)))
