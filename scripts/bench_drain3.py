#!/usr/bin/env python3
"""The same work as `auspex logs parse --threads 1`, done with drain3 (defaults), for the
side-by-side figure in BENCHMARKS.md: split each line by a logparser log_format, mine the
<Content> with drain3's TemplateMiner, write LineId,EventId,EventTemplate.

    python3 scripts/bench_drain3.py --input FILE --log-format FMT --output OUT.csv
Prints `drain3: lines=N seconds=S lines_per_s=R`.
"""
import argparse, csv, re, sys, time

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig


def format_regex(fmt):
    parts = re.split(r"(<[^<>]+>)", fmt)
    rx = ""
    for p in parts:
        if p.startswith("<") and p.endswith(">"):
            rx += "(?P<%s>.*?)" % p[1:-1]
        else:
            rx += re.sub(" +", r"\\s+", p)
    return re.compile("^" + rx + "$")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--log-format", required=True)
    ap.add_argument("--output", required=True)
    a = ap.parse_args()
    rx = format_regex(a.log_format)
    cfg = TemplateMinerConfig()
    cfg.profiling_enabled = False
    miner = TemplateMiner(config=cfg)
    t0 = time.time()
    ids = []
    with open(a.input, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n").strip()
            m = rx.match(line)
            content = m.group("Content") if m else line
            r = miner.add_log_message(content)
            ids.append(r["cluster_id"])
    with open(a.output, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["LineId", "EventId", "EventTemplate"])
        clusters = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
        for i, cid in enumerate(ids, 1):
            w.writerow([i, "E%d" % cid, clusters.get(cid, "")])
    dt = time.time() - t0
    print("drain3: lines=%d seconds=%.2f lines_per_s=%.0f" % (len(ids), dt, len(ids) / dt))


if __name__ == "__main__":
    sys.exit(main())
