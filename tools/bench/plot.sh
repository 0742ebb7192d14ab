#!/usr/bin/env bash
# Plot compare.sh's open-loop sweep: submit latency (p50 solid, p99 dashed)
# against offered load, one colour per system, both axes logarithmic.
#
#   tools/bench/plot.sh [DIR]     reads DIR/sweep.csv, writes DIR/sweep.png
#                                 (DIR defaults to /tmp/ringq-compare)
set -euo pipefail

DIR=${1:-/tmp/ringq-compare}
CSV=$DIR/sweep.csv
PNG=$DIR/sweep.png
[ -r "$CSV" ] || { echo "plot.sh: $CSV not found; run compare.sh first" >&2; exit 66; }
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not installed (apt-get install gnuplot-nox)" >&2; exit 69; }

# The systems in the order they first appear.
systems=$(awk -F, 'NR > 1 && !seen[$1]++ { printf "%s ", $1 }' "$CSV")
[ -n "$systems" ] || { echo "plot.sh: $CSV has no rows" >&2; exit 65; }
machine=$(sed -n 's/^cpu: //p' "$DIR/machine.txt" 2>/dev/null | head -1)

timeout 60 gnuplot <<EOF
set terminal pngcairo size 1000,640 font ",11"
set output "$PNG"
set datafile separator ","
set datafile missing "-"
set title "Durable submit latency against offered load (open loop, 8 connections x depth 16)\n{/*0.8 $machine}"
set xlabel "offered load (submits/s)"
set ylabel "latency from due time to reply (ms)"
set logscale xy
set grid xtics ytics mxtics mytics lc rgb "#dddddd"
set key outside right top
set style line 1 lc rgb "#1f77b4" lw 2 pt 7
set style line 2 lc rgb "#d62728" lw 2 pt 5
set style line 3 lc rgb "#2ca02c" lw 2 pt 9
set style line 4 lc rgb "#9467bd" lw 2 pt 11
systems = "$systems"
sys(i) = word(systems, i)
plot for [i=1:words(systems)] "$CSV" using (strcol(1) eq sys(i) ? \$3 : NaN):5 \\
        with linespoints ls i title sys(i)." p50", \\
     for [i=1:words(systems)] "$CSV" using (strcol(1) eq sys(i) ? \$3 : NaN):7 \\
        with linespoints ls i dt 2 title sys(i)." p99"
EOF
echo "$PNG"
