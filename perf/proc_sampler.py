#!/usr/bin/env python3
# File: perf/proc_sampler.py
#
# Runs one command and samples its /proc entries every INTERVAL seconds until it ends:
# anonymous and file-backed resident memory (/proc/PID/status RssAnon, RssFile) and the
# CPU time of the process and of each of its threads (/proc/PID/task/TID/stat).
# Prints one JSON object on stdout (wall, user, sys, max_rss_kib, major_faults from wait4; the peaks of
# RssAnon / RssFile; samples taken), and with --timeline FILE writes every sample as TSV:
#   t_s  rss_anon_kib  rss_file_kib  cpu_s  busy_threads
# (cpu_s: the process's user+sys so far; busy_threads: threads whose CPU grew since the
# last sample). The command's own stdout and stderr go to --log (default /dev/null).
#
#   python3 perf/proc_sampler.py [--interval 0.01] [--timeline t.tsv] [--log run.log] -- CMD ARGS...
#
# Why polling RssAnon and not VmHWM: VmHWM (= wait4's ru_maxrss) is the peak of anonymous
# *plus* file-backed resident pages, and tixport maps its input, so at 10 GB the page cache
# pages of the export that happen to be mapped dominate it; their share at the moment of the
# peak is not recorded anywhere, so it cannot be subtracted afterwards. RssAnon is only
# what malloc, thread stacks and zstd's buffers hold. A 10 ms poll can miss a spike shorter
# than that; the anonymous peaks of a run build up over hundreds of ms (maps and vectors
# growing), so the error is at most what is allocated in 10 ms.
import json
import os
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def status_kib(pid):
    anon = file_ = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1])
            elif line.startswith("RssFile:"):
                file_ = int(line.split()[1])
    return anon, file_


def thread_ticks(pid):
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # fields[11], fields[12]: utime, stime (fields 14 and 15 of stat(5))
            ticks[tid] = int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return ticks


def main(argv):
    interval, timeline, log = 0.01, None, os.devnull
    while argv and argv[0] != "--":
        opt = argv.pop(0)
        if opt == "--interval":
            interval = float(argv.pop(0))
        elif opt == "--timeline":
            timeline = argv.pop(0)
        elif opt == "--log":
            log = argv.pop(0)
        else:
            sys.exit(f"proc_sampler: unknown option {opt}")
    if not argv or len(argv) < 2:
        sys.exit("usage: proc_sampler.py [--interval S] [--timeline FILE] [--log FILE] -- CMD ARGS...")
    cmd = argv[1:]
    rows = []
    peak_anon = peak_file = 0
    seen = {}  # tid -> ticks at its last sample (threads that ended keep their last value)
    with open(log, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        while True:
            # WNOHANG through wait4 keeps the rusage of the child once it has ended.
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid != 0:
                break
            try:
                anon, file_ = status_kib(proc.pid)
                ticks = thread_ticks(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                anon = file_ = None
                ticks = {}
            if anon is not None:
                busy = sum(1 for tid, t in ticks.items() if t > seen.get(tid, 0))
                seen.update(ticks)
                peak_anon = max(peak_anon, anon)
                peak_file = max(peak_file, file_ or 0)
                rows.append((time.monotonic() - t0, anon, file_ or 0, sum(seen.values()) / CLK_TCK, busy))
            time.sleep(interval)
        wall = time.monotonic() - t0
    if timeline:
        with open(timeline, "w") as f:
            f.write("t_s\trss_anon_kib\trss_file_kib\tcpu_s\tbusy_threads\n")
            for r in rows:
                f.write(f"{r[0]:.4f}\t{r[1]}\t{r[2]}\t{r[3]:.2f}\t{r[4]}\n")
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({
        "exit_code": code,
        "wall_s": round(wall, 4),
        "user_s": round(usage.ru_utime, 3),
        "sys_s": round(usage.ru_stime, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "max_rss_kib": usage.ru_maxrss,
        "major_faults": usage.ru_majflt,
        "peak_rss_anon_kib": peak_anon,
        "peak_rss_file_kib": peak_file,
        "samples": len(rows),
    }))
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
