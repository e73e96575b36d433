# File: perf/plot_throughput_rows.gnuplot
#
# Rows per second of `tixport run` to .tar.zst against the export size, from
# perf/scaling_model.sh: wall-clock rows/s and rows per CPU-second (the figure that does not
# depend on how busy the shared machine was). Data: TSV with a header row, column 1 the rows.
#   gnuplot -e "datafile='perf/plots/throughput_vs_rows_X.tsv'; outfile='perf/plots/throughput_vs_rows_X.png'" \
#           perf/plot_throughput_rows.gnuplot

if (!exists("datafile")) datafile = "perf/plots/throughput_vs_rows.tsv"
if (!exists("outfile")) outfile = "perf/plots/throughput_vs_rows.png"

set terminal pngcairo size 900,560 enhanced font "DejaVu Sans,11"
set output outfile
set datafile separator "\t"
set datafile missing "?"
set key top right noenhanced
set title "tixport run -> .tar.zst, --threads 2 (2-core shared machine): rows per second against export size"
set xlabel "export size (rows)"
set ylabel "rows per second"
set logscale x 10
set format x "10^{%L}"
set yrange [0:*]
set grid xtics ytics lc rgb "#dddddd"
set offsets graph 0.05, graph 0.05, 0, 0
set style data linespoints
plot datafile using 1:2 title columnheader(2) lw 2 pt 7 ps 1.2 lc rgb "#1f77b4", \
     datafile using 1:3 title columnheader(3) lw 2 pt 5 ps 1.2 lc rgb "#2ca02c" dt 2
