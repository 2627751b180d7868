# The plot of tests/native/timeline.sh's data (make plot-timeline; re-render only:
# make plot-timeline-png): MB of the restored memhog's memory installed vs ms since `criu
# restore` started, one curve per run. Blocks of the data file, in order: local, loopback,
# link, each before then after; each block's first line is its title.
#   gnuplot -e "dat='docs/img/stream-timeline.dat'; png='docs/img/stream-timeline.png'" tests/native/timeline.gp
if (!exists("dat")) dat = 'docs/img/stream-timeline.dat'
if (!exists("png")) png = 'docs/img/stream-timeline.png'

set terminal pngcairo size 1200,1000 font "DejaVu Sans,11" linewidth 1
set output png
set datafile commentschars "#"

# Okabe-Ito colours (colour-blind safe): local blue, loopback vermilion, link green; the
# "before" build dashed and thinner, "after" solid.
colour(i) = word("#0072B2 #0072B2 #D55E00 #D55E00 #009E73 #009E73", i + 1)
dash(i) = i % 2 == 0 ? 2 : 1
width(i) = i % 2 == 0 ? 1.6 : 2.6

stats dat using 1 nooutput
xmax = STATS_max
nb = STATS_blocks

set grid back lc rgb "#dddddd"
set ylabel "MiB of the task's memory installed (RssAnon)"
set yrange [0:*]
set key right bottom box opaque samplen 4 spacing 1.2

set multiplot layout 2,1 title "1 GB memhog restored lazily (CRIU 4.2.1): bytes installed over time, one reader verifying from resume" font ",12"

set title "all runs"
set xlabel "ms since criu restore started"
set xrange [0:xmax * 1.02]
plot for [i=0:nb-1] dat index i using 1:2 with lines lc rgb colour(i) dt dash(i) lw width(i) title columnheader(1)

set title "the first 3 s (same curves)"
set xrange [0:3000]
unset key
plot for [i=0:nb-1] dat index i using 1:2 with lines lc rgb colour(i) dt dash(i) lw width(i) title columnheader(1)

unset multiplot
