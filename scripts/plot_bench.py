#!/usr/bin/env python3
"""Plots an `actorserve bench --csv` file: p50 and p99 latency against throughput, one point per
step (a --connections-list or --rates sweep), each point labelled with its step (c=8, 400/s).

Run: scripts/plot_bench.py BENCH.csv OUT.png [--x achieved|offered] [--title TEXT]
     --x offered puts the offered rate on the x axis (open-loop steps only; closed-loop steps
     have no offered rate and keep their achieved req/s).
`actorserve bench --plot OUT.png` calls this after a run. Needs matplotlib: the project venv
(`bash scripts/venv.sh`, ~/.cache/actorserve/venv) installs it from
scripts/python-requirements.txt.
"""
import argparse
import csv
import os
import sys


def read_steps(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit("plot_bench: %s has no rows" % path)
    missing = {"mode", "connections", "target_rate", "rps", "p50_us", "p99_us"} - set(rows[0])
    if missing:
        sys.exit("plot_bench: %s lacks columns %s (not an actorserve bench CSV?)"
                 % (path, ", ".join(sorted(missing))))
    return rows


def label(row):
    if row["mode"] == "open":
        return "%g/s" % float(row["target_rate"])
    return "c=%s" % row["connections"]


def x_value(row, axis):
    if axis == "offered" and row["mode"] == "open" and row["target_rate"]:
        return float(row["target_rate"])
    return float(row["rps"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv")
    parser.add_argument("png")
    parser.add_argument("--x", choices=["achieved", "offered"], default="achieved")
    parser.add_argument("--title")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        sys.exit("plot_bench: matplotlib is missing; make the project venv with "
                 "`bash scripts/venv.sh` and run this with ~/.cache/actorserve/venv/bin/python")

    rows = read_steps(args.csv)
    xs = [x_value(r, args.x) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    for column, name, marker in (("p50_us", "p50", "o"), ("p99_us", "p99", "s")):
        ys = [float(r[column]) / 1000.0 for r in rows]
        ax.plot(xs, ys, marker=marker, label=name)
        if column == "p99_us":
            for x, y, r in zip(xs, ys, rows):
                ax.annotate(label(r), (x, y), textcoords="offset points", xytext=(4, 6),
                            fontsize=8)
    ax.set_xlabel("offered requests/s" if args.x == "offered" else "achieved requests/s")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(args.title or "actorserve bench: %s" % os.path.basename(args.csv))
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)
    print("plot_bench: wrote %s (%d steps)" % (args.png, len(rows)))


if __name__ == "__main__":
    main()
