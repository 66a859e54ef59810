#!/usr/bin/env bash
# Plots of bench/scale.sh: scale-*.png from scale-*.dat in DIR (default
# bench/). Each panel shows the measured points and a least-squares fit of
# the shape the curve should have (see bench/scale.sh), so a curve bending
# away from its fit shows at a glance. Runs on whatever .dat files exist.
#
#   bench/scale_plot.sh [DIR]
set -euo pipefail
DIR=${1:-$(cd "$(dirname "$0")" && pwd)}
cd "$DIR"
command -v gnuplot >/dev/null || { echo "scale_plot: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
# plot NAME WIDTH,HEIGHT: reads the panel commands of scale-NAME.png on
# stdin and runs them after the common preamble (terminal, output file,
# quiet fits, grid), when scale-NAME.dat exists and is not empty.
plot() {
  local name=$1 size=$2 body
  body=$(cat)
  [ -s "scale-$name.dat" ] || return 0
  gnuplot 2>/dev/null <<GP
set terminal pngcairo size $size font ",10"
set output "scale-$name.png"
set fit quiet
set fit logfile "/dev/null"
set grid
$body
GP
  echo "wrote $DIR/scale-$name.png"
}

plot pairs 1100,800 <<'GP'
set key top left
set logscale xy
set xlabel "pairs on the node"
set multiplot layout 2,2 title "evsrepd cost vs pairs on one node (1 GiB pairs; groups of 10 plus one fence group)"
f(x) = a + b * x
a = 100; b = 1
fit f(x) "scale-pairs.dat" using 1:2 via a, b
set ylabel "start-up (ms)"
plot "scale-pairs.dat" using 1:2 with linespoints pt 7 title "measured", f(x) with lines dt 2 title sprintf("expected a + b N: %.0f + %.2f N ms", a, b)
g(x) = c + d * x
c = 10; d = 0.1
fit g(x) "scale-pairs.dat" using 1:3 via c, d
set ylabel "RSS after start-up (MiB)"
plot "scale-pairs.dat" using 1:3 with linespoints pt 7 title "measured", g(x) with lines dt 2 title sprintf("expected a + b N: %.1f + %.3f N MiB", c, d)
h(x) = e + k * x
e = 1; k = 0.01
fit h(x) "scale-pairs.dat" using 1:4 via e, k
set ylabel "GET pairs list, wrk -c8 (ms)"
m(x) = q * x
q = 0.03
fit m(x) "scale-pairs.dat" using 1:11 via q
plot "scale-pairs.dat" using 1:4 with linespoints pt 7 title "measured p99", "scale-pairs.dat" using 1:9 with linespoints pt 5 title "measured p50", h(x) with lines dt 2 title sprintf("expected a + b N (p99 fit): %.2f + %.4f N ms", e, k), \
     "scale-pairs.dat" using 1:11 with linespoints pt 9 title "evsrepd CPU per GET", m(x) with lines dt 3 title sprintf("expected b N (CPU fit): %.4f N ms", q)
unset logscale y
set yrange [0:*]
set ylabel "pause fence p99 (us)"
set label 1 "target 5000 us" at graph 0.02, first 5150
plot "scale-pairs.dat" using 1:5 with linespoints pt 7 title "measured (group of min(N,16) pairs)", 5000 with lines dt 3 title "target p99 < 5 ms (expected: constant in N)"
unset multiplot
GP
plot size 1100,800 <<'GP'
set key top left
set logscale x 2
set xlabel "volume size (GiB, sparse; 16 MiB written)"
set multiplot layout 2,2 title "evsrepd cost vs volume size (one pair)"
set logscale y
set ylabel "MiB"
plot "scale-size.dat" using 1:10 with lines dt 2 title "bitmap, 1 bit per 64 KiB (expected: linear in size)", \
     "scale-size.dat" using 1:($2 > 0.01 ? $2 : 0.01) with linespoints pt 7 title "RSS growth of evsrepd", \
     "scale-size.dat" using 1:3 with linespoints pt 5 title "meta file, allocated", \
     "scale-size.dat" using 1:4 with linespoints pt 4 title "meta file, apparent"
f(x) = a + b * x
a = 100; b = 0.01
fit f(x) "scale-size.dat" using 1:5 via a, b
set ylabel "create pair to active (ms)"
plot "scale-size.dat" using 1:5 with linespoints pt 7 title "measured", f(x) with lines dt 2 title sprintf("expected a + b S: %.0f + %.4f S ms", a, b)
g(x) = c + d * x
c = 100; d = 0.01
fit g(x) "scale-size.dat" using 1:7 via c, d
set ylabel "open after a clean stop (ms)"
plot "scale-size.dat" using 1:6 with linespoints pt 5 title "exec to API", "scale-size.dat" using 1:7 with linespoints pt 7 title "exec to pair active", g(x) with lines dt 2 title sprintf("expected a + b S: %.0f + %.4f S ms", c, d)
h(x) = e + k * x
e = 100; k = 0.01
fit h(x) "scale-size.dat" using 1:9 via e, k
set ylabel "open after kill -9 (ms)"
plot "scale-size.dat" using 1:8 with linespoints pt 5 title "exec to API", "scale-size.dat" using 1:9 with linespoints pt 7 title "exec to pair active", h(x) with lines dt 2 title sprintf("expected a + b S: %.0f + %.4f S ms", e, k)
unset multiplot
GP
plot dirty 900,600 <<'GP'
set key top left
set logscale xy
set xlabel "dirty bytes (MiB)"
set ylabel "resync time (s)"
set title "incremental resync vs dirty bytes (one pair; expected: dirty bytes / the disk's copy rate)"
plot "scale-dirty.dat" using ($3/1048576):2 with linespoints pt 7 title "measured (engine resync start to done)", \
     "scale-dirty.dat" using ($3/1048576):4 with lines dt 2 title "dirty bytes / dd copy rate", \
     "scale-dirty.dat" using ($3/1048576):5 with linespoints pt 4 dt 3 title "copy\\_file\\_range of as many chunks, cold source (ref-s)"
GP
plot clients 900,600 <<'GP'
set key bottom right
set logscale x 2
set yrange [0:*]
set xlabel "NBD connections (fio 4 KiB random read, QD1 each)"
set ylabel "aggregate IOPS"
set title "NBD clients: expected to rise until the cores are busy, then flat (never falling)"
plot "scale-clients.dat" using 1:2 with linespoints pt 7 title "all on one volume", \
     "scale-clients.dat" using 1:3 with linespoints pt 5 title "one volume each"
GP
