#!/usr/bin/env python3
"""Leave-one-category-out NAB scores: each category is scored at the global threshold chosen
on the *other* categories, the way held-out categories are scored at a threshold they did not
choose. Uses the scoring functions of an independent `nab_score.py` (not shipped here).

usage: scripts/nab_loco.py --scorer ../shared/tools/nab_score.py --data DIR RESULTS [RESULTS...]
RESULTS: `auspex bench nab --out` folders.
"""
import argparse
import importlib.util
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scorer", required=True, help="path to nab_score.py")
    ap.add_argument("--data", required=True, help="NAB-shaped folder (data/, labels/)")
    ap.add_argument("results", nargs="+")
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("nab_score", a.scorer)
    ns = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ns)
    labels = json.load(open(os.path.join(a.data, "labels", "combined_windows.json")))
    cats = sorted({r.split("/")[0] for r in labels})
    for res in a.results:
        files = [(rel,) + ns.load_file(a.data, res, rel, labels[rel], None) for rel in sorted(labels)]
        line = [res]
        for prof in ns.PROFILE_ORDER:
            atp, afp, afn = ns.PROFILES[prof]
            total, windows, thresholds = 0.0, 0, []

            def points(keep):
                pts, base = [], 0
                for rel, n, spans, scores in files:
                    if keep(rel):
                        pts.extend(ns.file_points(n, spans, scores, atp, afp, base))
                        base += len(spans)
                return pts, base

            for c in cats:
                inside = lambda rel: rel.startswith(c + "/")
                pts, nw = points(lambda rel: not inside(rel))
                _, thr = ns.sweep(pts, nw, afn)
                thresholds.append(thr)
                pts, nw = points(inside)
                best = [None] * nw
                fp = 0.0
                for s, w, wid in pts:
                    if thr is None or s < thr:
                        continue
                    if wid < 0:
                        fp += w
                    elif best[wid] is None or w > best[wid]:
                        best[wid] = w
                total += fp + sum(b for b in best if b is not None) - afn * best.count(None)
                windows += nw
            score = 100.0 * (total + windows * afn) / (windows * atp + windows * afn)
            lo, hi = min(t for t in thresholds if t is not None), max(t for t in thresholds if t is not None)
            line.append("%s=%.2f (thresholds %.4f-%.4f)" % (prof, score, lo, hi))
        print(" ".join(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
