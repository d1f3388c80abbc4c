#!/usr/bin/env python3
"""Reference output of the windowed-sum example, computed without Weir.

Semantics (Flink's tumbling event-time windows with EventTimeTrigger):
- The source is read in file order (parallelism 1). Watermarks are
  punctuated: after each record that raises the maximum timestamp M, the
  watermark becomes M - 2000 - 1 (2 s out-of-orderness).
- A record belongs to window [start, start+10000) with start = ts - ts % 10000;
  the window's max timestamp is end - 1.
- A record is too late (side output, printed as key TAB the JSON line) when
  max_ts + 5000 (allowed lateness) <= the watermark it arrives at.
- Otherwise it is added to its window's sum; if the watermark already passed
  max_ts, the window fires again at once with the updated sum (late firing).
- When the watermark reaches a window's max timestamp the window fires
  (key TAB "start,end,sum"); its state is dropped when the watermark reaches
  max_ts + 5000. The final watermark at end of input fires every window.
"""
import json, sys

SIZE, LATENESS, BOUND = 10_000, 5_000, 2_000
MIN = -(1 << 63)

def main(path):
    wm = MIN
    max_ts = MIN
    windows = {}  # (key, start) -> sum ; present while not cleaned up
    fired = set()  # windows whose on-time timer fired
    out, late = [], []

    def advance(new_wm):
        # Timers in timestamp order: the fire timer at max_ts, cleanup at max_ts + lateness.
        timers = []
        for (k, s) in windows:
            mt = s + SIZE - 1
            if (k, s) not in fired and mt <= new_wm:
                timers.append((mt, 0, k, s))
            if mt + LATENESS <= new_wm:
                timers.append((mt + LATENESS, 1, k, s))
        for ts, kind, k, s in sorted(timers):
            if kind == 0:
                fired.add((k, s))
                out.append(f"{k}\t{s},{s + SIZE},{windows[(k, s)]}")
            else:
                del windows[(k, s)]

    for line in open(path):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        k, ts, amount = r["key"], r["ts"], r["amount"]
        start = ts - ts % SIZE
        mt = start + SIZE - 1
        if mt + LATENESS <= wm:
            late.append(f"{k}\t{line}")
        else:
            windows[(k, start)] = windows.get((k, start), 0) + amount
            if mt <= wm:
                out.append(f"{k}\t{start},{start + SIZE},{windows[(k, start)]}")
        if ts > max_ts:
            max_ts = ts
            new_wm = max_ts - BOUND - 1
            if new_wm > wm:
                wm = new_wm
                advance(wm)
    advance((1 << 63) - 1)
    return sorted(out), sorted(late)

if __name__ == "__main__":
    out, late = main(sys.argv[1] if len(sys.argv) > 1 else "input.jsonl")
    open("expected.txt", "w").write("\n".join(out) + "\n")
    open("expected-late.txt", "w").write("\n".join(late) + "\n")
