# File: perf/plot_throughput_threads.gnuplot
#
# Rows per second of `tixport run` against --threads, from perf/scaling_model.sh: measured
# points (filled), points with more threads than cores (open, labelled oversubscribed) and
# the Amdahl model of perf/SCALING.md up to 64 (dashed). Data: TSV with a header row,
# column 1 the threads, then per format: measured, model, oversubscribed.
#   gnuplot -e "datafile='...tsv'; outfile='...png'; cores=2" perf/plot_throughput_threads.gnuplot

if (!exists("datafile")) datafile = "perf/plots/throughput_vs_threads.tsv"
if (!exists("outfile")) outfile = "perf/plots/throughput_vs_threads.png"
if (!exists("cores")) cores = 2

set terminal pngcairo size 900,560 enhanced font "DejaVu Sans,11"
set output outfile
set datafile separator "\t"
set datafile missing "?"
set key bottom right noenhanced
set title sprintf("tixport run, 1M rows: rows per second against --threads (measured on %d cores; model beyond)", cores)
set xlabel "--threads (cores)"
set ylabel "rows per second"
set logscale x 2
set yrange [0:*]
set xrange [0.8:80]
set grid xtics ytics lc rgb "#dddddd"
set arrow from cores, graph 0 to cores, graph 1 nohead lc rgb "#999999" dt 3
set label "cores" at cores, graph 0.95 offset 0.5, 0 tc rgb "#777777"
colours = "#1f77b4 #2ca02c"
plot for [f=0:1] datafile using 1:(column(2 + 3 * f)) title columnheader(2 + 3 * f) with linespoints lw 2 pt 7 ps 1.3 lc rgb word(colours, f + 1), \
     for [f=0:1] datafile using 1:(column(3 + 3 * f)) title columnheader(3 + 3 * f) with lines lw 1.5 dt 2 lc rgb word(colours, f + 1), \
     for [f=0:1] datafile using 1:(column(4 + 3 * f)) title columnheader(4 + 3 * f) with points pt 6 ps 1.6 lc rgb word(colours, f + 1)
