# File: perf/plot.gnuplot
#
# Rows per second against export size, one line per tool / configuration, for
# one run of perf/run_perf.sh. Both axes are logarithmic: tixport and the
# pandas baseline are two to three orders of magnitude apart.
#
# The data file is tab-separated with a header row: column 1 is the number of
# rows, each further column one series (its header is the legend title), "?"
# where a series has no value at that size. run_perf.sh writes it and calls:
#   gnuplot -e "datafile='perf/data/plot.tsv'; outfile='perf/rows_per_second.png'; \
#               ncols=6; subtitle='2025-01-01, commit abc1234, 2 cores'" perf/plot.gnuplot

if (!exists("datafile")) datafile = "perf/data/plot.tsv"
if (!exists("outfile")) outfile = "perf/rows_per_second.png"
if (!exists("ncols")) ncols = 2
if (!exists("subtitle")) subtitle = ""

set terminal pngcairo size 1000,640 enhanced font "DejaVu Sans,11"
set output outfile
set datafile separator "\t"
set datafile missing "?"
set key outside right top vertical Left reverse noenhanced
set title "tixport vs the original pandas pipeline: rows per second, end to end\n{/*0.8 ".subtitle."}"
set xlabel "export size (rows)"
set ylabel "rows per second (wall clock)"
set logscale xy 10
set format x "10^{%L}"
set format y "10^{%L}"
set grid xtics ytics mytics lc rgb "#dddddd"
set xrange [*:*]
set offsets graph 0.05, graph 0.05, 0, 0
set style data linespoints

# tixport's series first in blues and greens, then the baseline (red) and the
# read floor (grey, dashed): run_perf.sh writes the columns in that order.
palette = "#1f77b4 #2ca02c #17becf #9467bd #8c564b #e377c2"
colour(i) = i == ncols ? "#7f7f7f" : i == ncols - 1 ? "#d62728" : word(palette, (i - 2) % 6 + 1)
plot for [i=2:ncols-1] datafile using 1:i title columnheader(i) lw 2 pt 7 ps 1.2 lc rgb colour(i), \
     datafile using 1:ncols title columnheader(ncols) lw 2 pt 6 ps 1.2 lc rgb colour(ncols) dt 2
