#!/usr/bin/env python3
# File: perf/scaling_model.py
#
# The analysis half of perf/scaling_model.sh (which says what the figures mean): reads its
# runs.tsv (one line per sampled run: the proc_sampler JSON, the --report JSON, the load),
# prints the Markdown tables of perf/SCALING.md and writes the plot data:
#   PLOTS/throughput_vs_threads_STAMP.tsv, PLOTS/throughput_vs_rows_STAMP.tsv
#
#   python3 perf/scaling_model.py RUNS_TSV ROWS PLOTS STAMP LOAD_START LOAD_END CORES
import csv
import json
import statistics
import sys

PROJECT = (8, 32, 64)


def load_runs(path):
    runs = []
    for r in csv.DictReader(open(path), delimiter="\t"):
        r["sample"] = json.load(open(r["sample"]))
        r["report_path"] = r["report"]
        r["report"] = json.load(open(r["report"]))
        r["timeline"] = r["report_path"].replace(".report.json", ".timeline.tsv")
        r["threads"] = int(r["threads"])
        r["rows"] = int(r["rows"])
        runs.append(r)
    return runs


def timeline(path):
    pts = []
    with open(path) as f:
        next(f)
        for line in f:
            t, anon, file_, cpu, busy = line.split("\t")
            pts.append((float(t), float(cpu), int(busy)))
    return pts


def cpu_at(pts, t):
    """Process CPU seconds at time t, interpolated between samples."""
    if not pts:
        return 0.0
    if t <= pts[0][0]:
        return pts[0][1] * (t / pts[0][0]) if pts[0][0] > 0 else pts[0][1]
    for (t0, c0, _), (t1, c1, _) in zip(pts, pts[1:]):
        if t0 <= t <= t1:
            return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
    return pts[-1][1]


def stage_windows(run):
    """[(name, seconds, cpu_s, mean busy threads)] for the run's stages, placed end to end."""
    rep = run["report"]
    pts = timeline(run["timeline"])
    wall = run["sample"]["wall_s"]
    t = max(0.0, wall - rep["seconds"])  # the stages start when run_migration starts
    out = []
    for key, secs in rep["stages"].items():
        name = key[: -len("_seconds")]
        a, b = t, t + secs
        busy = [p[2] for p in pts if a <= p[0] <= b]
        out.append((name, secs, cpu_at(pts, b) - cpu_at(pts, a), statistics.mean(busy) if busy else float("nan")))
        t = b
    return out


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x, d=3):
    return "-" if x != x else f"{x:.{d}f}"


def main(argv):
    runs_tsv, rows, plots, stamp, load_start, load_end, cores = argv
    rows, cores = int(rows), int(cores)
    runs = load_runs(runs_tsv)
    threads_runs = [r for r in runs if r["kind"] == "threads"]
    formats = list(dict.fromkeys(r["format"] for r in threads_runs))
    thread_counts = sorted({r["threads"] for r in threads_runs})
    model_by_format = {}

    for fmt_name in formats:
        by_t = {t: [r for r in threads_runs if r["format"] == fmt_name and r["threads"] == t] for t in thread_counts}
        n_rounds = len(by_t[1])
        print(f"\n#### {rows} rows to .{fmt_name}: stages at --threads 1 and 2 (median of {n_rounds})\n")
        stage_names = list(by_t[1][0]["report"]["stages"].keys())
        stage_names = [s[: -len("_seconds")] for s in stage_names]
        per = {}  # (t, stage) -> lists
        for t, rs in by_t.items():
            for r in rs:
                for name, secs, cpu, busy in stage_windows(r):
                    d = per.setdefault((t, name), {"s": [], "cpu": [], "busy": []})
                    d["s"].append(secs)
                    d["cpu"].append(cpu)
                    d["busy"].append(busy)
        wall = {t: med([r["sample"]["wall_s"] for r in rs]) for t, rs in by_t.items()}
        cpu = {t: med([r["sample"]["cpu_s"] for r in rs]) for t, rs in by_t.items()}
        print("| stage | T1 wall s | T2 wall s | speedup | serial fraction e | serial s (e·T1) | CPU s at T1 | CPU s at T2 | CPU/wall at T2 | threads busy at T2 | n_half = (1−e)/e |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        model = []  # (name, T1, e, None) or (name, T1, e, (serial s, CPU s)) for the max() model
        for name in stage_names:
            t1 = med(per[(1, name)]["s"])
            t2 = med(per[(2, name)]["s"])
            e = min(1.0, max(0.0, 2 * t2 / t1 - 1)) if t1 > 0 else 1.0
            c1 = med(per[(1, name)]["cpu"])
            c2 = med(per[(2, name)]["cpu"])
            busy2 = med([b for b in per[(2, name)]["busy"] if b == b])
            n_half = (1 - e) / e if e > 0 else float("inf")
            # A stage that already used more than one core at --threads 1 (the write of .tar.zst:
            # zstd's worker thread beside the writer) has no 1-core point, so Karp-Flatt says
            # nothing: it is modelled as max(serial, CPU/n), with the serial part of the same
            # stage writing .tar (the same ordered tar path, plus write() of the whole tar
            # into the page cache instead of zstd's input copy: an upper bound).
            c1w = c1 / t1 if t1 > 0 else 0
            model.append((name, t1, e, (None, c2) if c1w > 1.2 else None))
            print(f"| {name} | {fmt(t1)} | {fmt(t2)} | {fmt(t1 / t2 if t2 > 0 else float('nan'), 2)} | {fmt(e, 2)} | "
                  f"{fmt(e * t1)} | {fmt(c1, 2)} | {fmt(c2, 2)} | {fmt(c2 / t2 if t2 > 0 else float('nan'), 2)} | "
                  f"{fmt(busy2, 2)} | {'∞' if n_half == float('inf') else fmt(n_half, 1)} |")
        rest1 = wall[1] - sum(m[1] for m in model)
        rest2 = wall[2] - sum(med(per[(2, n)]["s"]) for n in stage_names)
        print(f"| outside the stages (start-up, commit, report; counted serial) | {fmt(rest1)} | {fmt(rest2)} | | 1 | {fmt(rest1)} | | | | | |")
        extra = "".join(f"; --threads {t} (more threads than the {cores} cores): wall {fmt(wall[t])} s, CPU {fmt(cpu[t], 2)} s"
                        for t in thread_counts if t > 2)
        print(f"\nWhole run: --threads 1 wall {fmt(wall[1])} s, CPU {fmt(cpu[1], 2)} s; --threads 2 wall {fmt(wall[2])} s, "
              f"CPU {fmt(cpu[2], 2)} s; speedup {fmt(wall[1] / wall[2], 2)}{extra}.")
        model_by_format[fmt_name] = [model, rest1, wall]

    # Stages modelled as max(serial, CPU/n) take their serial part from another format's stage.
    for fmt_name, (model, rest1, wall) in model_by_format.items():
        for i, (name, t1, e, cpu_model) in enumerate(model):
            if cpu_model is None:
                continue
            others = [m for f, (mm, _, _) in model_by_format.items() if f != fmt_name for m in mm
                      if m[0] == name and m[3] is None]
            serial = others[0][1] * others[0][2] if others else t1
            model[i] = (name, t1, e, (serial, cpu_model[1]))

    def stage_time(m, n):
        name, t1, e, cpu_model = m
        if n == 1 or cpu_model is None:
            return t1 * (e + (1 - e) / n) if cpu_model is None else t1
        return max(cpu_model[0], cpu_model[1] / n)

    for fmt_name, (model, rest1, wall) in model_by_format.items():
        # Amdahl projections.
        print(f"\n#### Amdahl projection, .{fmt_name}, {rows} rows: T(n) = Σ T1·(e + (1−e)/n) + outside\n")
        for name, t1, e, cpu_model in model:
            if cpu_model is not None:
                print(f"(`{name}` used more than one core already at --threads 1: modelled as max({fmt(cpu_model[0])} s serial, "
                      f"{fmt(cpu_model[1], 2)} s CPU / n), the serial part taken from the same stage of the other format.)\n")
        head = "| stage | " + " | ".join(f"n = {n}" for n in (1, 2) + PROJECT) + " | floor (n → ∞) |"
        print(head)
        print("|---|" + "---:|" * (len(PROJECT) + 3))
        totals = {n: rest1 for n in (1, 2) + PROJECT}
        floors = {}
        for m in model:
            cells = []
            for n in (1, 2) + PROJECT:
                v = stage_time(m, n)
                totals[n] += v
                cells.append(fmt(v))
            floors[m[0]] = m[3][0] if m[3] is not None else m[1] * m[2]
            print(f"| {m[0]} | " + " | ".join(cells) + f" | {fmt(floors[m[0]])} |")
        print(f"| outside the stages | " + " | ".join(fmt(rest1) for _ in (1, 2) + PROJECT) + f" | {fmt(rest1)} |")
        floor = rest1 + sum(floors.values())
        print(f"| **total wall s** | " + " | ".join(f"**{fmt(totals[n])}**" for n in (1, 2) + PROJECT) + f" | **{fmt(floor)}** |")
        print(f"| rows/s | " + " | ".join(f"{rows / totals[n] / 1e6:.2f} M" for n in (1, 2) + PROJECT) + f" | {rows / floor / 1e6:.2f} M |")
        print(f"| measured wall s | {fmt(wall[1])} | {fmt(wall[2])} | | | | |")
        s64 = {m[0]: stage_time(m, 64) for m in model}
        first = max(model, key=lambda m: floors[m[0]])
        print(f"\nFirst to stop scaling (.{fmt_name}): **{first[0]}**, serial {fmt(floors[first[0]])} s of its {fmt(first[1])} s "
              f"at --threads 1; at 64 cores it is {fmt(s64[first[0]])} s of the projected "
              f"{fmt(totals[64])} s ({100 * s64[first[0]] / totals[64]:.0f}%).")

    # Plot data: rows/s against threads (measured; the Amdahl model of each format).
    with open(f"{plots}/throughput_vs_threads_{stamp}.tsv", "w") as f:
        cols = []
        for fmt_name in formats:
            cols += [f"measured .{fmt_name}", f"Amdahl model .{fmt_name}", f"oversubscribed .{fmt_name}"]
        f.write("threads\t" + "\t".join(cols) + "\n")
        for n in sorted(set(thread_counts) | {1, 2, 4, 8, 16, 32, 64}):
            cells = []
            for fmt_name in formats:
                model, rest1, wall = model_by_format[fmt_name]
                m = rest1 + sum(stage_time(st, n) for st in model)
                measured = wall.get(n)
                inside = measured is not None and n <= cores
                cells += [f"{rows / measured:.0f}" if inside else "?", f"{rows / m:.0f}",
                          f"{rows / measured:.0f}" if measured is not None and n > cores else "?"]
            f.write(f"{n}\t" + "\t".join(cells) + "\n")

    # Plot data: rows/s against the export size.
    size_runs = [r for r in runs if r["kind"] == "size"]
    if size_runs:
        print("\n#### Throughput against the export size (.tar.zst)\n")
        print("| rows | runs | wall s | CPU s | rows/s (wall) | rows per CPU-second | unique comments | peak RssAnon MiB | anon B / unique comment | load avg before..after |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        with open(f"{plots}/throughput_vs_rows_{stamp}.tsv", "w") as f:
            f.write("rows\trows/s (wall)\trows per CPU-second\n")
            for n in sorted({r["rows"] for r in size_runs}):
                rs = [r for r in size_runs if r["rows"] == n]
                w = med([r["sample"]["wall_s"] for r in rs])
                c = med([r["sample"]["cpu_s"] for r in rs])
                anon = max(r["sample"]["peak_rss_anon_kib"] for r in rs)
                comments = rs[0]["report"]["comments"]
                loads = [float(r["load_before"]) for r in rs] + [float(r["load_after"]) for r in rs]
                f.write(f"{n}\t{n / w:.0f}\t{n / c:.0f}\n")
                print(f"| {n} | {len(rs)} | {fmt(w)} | {fmt(c, 2)} | {n / w / 1e6:.3f} M | {n / c / 1e6:.3f} M | {comments} | "
                      f"{anon / 1024:.0f} | {anon * 1024 / comments:.1f} | {min(loads):.2f}..{max(loads):.2f} |")
    print(f"\n/proc/loadavg at the start: {load_start}; at the end: {load_end}. Raw runs: {runs_tsv}")


if __name__ == "__main__":
    main(sys.argv[1:])
