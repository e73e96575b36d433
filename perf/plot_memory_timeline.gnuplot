# File: perf/plot_memory_timeline.gnuplot
#
# Anonymous and file-backed resident memory of one `tixport run` over time, from a
# perf/proc_sampler.py --timeline TSV (perf/memory_per_comment.sh keeps one per run), with
# the run's stage boundaries as vertical lines (seconds from the start, comma-separated).
#   gnuplot -e "datafile='t.tsv'; outfile='t.png'; stages='16.3,18.7'; label='27.7M rows'" perf/plot_memory_timeline.gnuplot

if (!exists("datafile")) datafile = "perf/plots/memory_timeline.tsv"
if (!exists("outfile")) outfile = "perf/plots/memory_timeline.png"
if (!exists("stages")) stages = ""
if (!exists("label")) label = ""

set terminal pngcairo size 900,520 enhanced font "DejaVu Sans,11"
set output outfile
set datafile separator "\t"
set key top left noenhanced
set title sprintf("tixport run -> .tar.zst: resident memory over time\n%s", label) noenhanced
set xlabel "seconds since start"
set ylabel "MiB"
set y2label "process CPU seconds"
set ytics nomirror
set y2tics
set grid xtics ytics lc rgb "#dddddd"
do for [i=1:words(stages)] {
  set arrow from word(stages, i), graph 0 to word(stages, i), graph 1 nohead lc rgb "#999999" dt 3
}
plot datafile using 1:($2/1024) skip 1 title "RssAnon (anonymous)" with lines lw 2 lc rgb "#d62728", \
     datafile using 1:($3/1024) skip 1 title "RssFile (mapped export)" with lines lw 1.5 lc rgb "#1f77b4", \
     datafile using 1:4 skip 1 axes x1y2 title "CPU s (right axis)" with lines lw 1 dt 2 lc rgb "#2ca02c"
