#!/usr/bin/env bash
# Draws the loss curves of examples/frozen_batchnorm (--curves DIR) as one PNG:
# one panel per case (legacy, fix 1, fix 2, fix 3), each with fit's loss and
# val_loss per epoch. val_loss is evaluated on the same images the model
# trains on, so the two curves differ only by the phase: fit's loss is the
# training phase (running mean over the epoch, before each update), val_loss
# the inference phase after the epoch, i.e. what evaluate() reports.
#
# Usage: scripts/plot_curves.sh DIR OUT.png
# Needs gnuplot (Debian: gnuplot-nox); uses the pngcairo terminal if it is
# available, else png.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DIR OUT.png   (DIR written by frozen_batchnorm --curves DIR)" >&2
  exit 2
fi
dir=$1
out=$2
command -v gnuplot > /dev/null || { echo "$0: gnuplot not found (Debian: apt-get install gnuplot-nox)" >&2; exit 2; }

cases=(legacy fix1 fix2 fix3)
titles=("legacy: frozen BN normalizes training batches with their own statistics"
        "fix 1: BN trainable (moving statistics follow the new data)"
        "fix 2: split (top trained on features from predict)"
        "fix 3: frozen BN uses its moving statistics in both phases")

# The 1-based column of NAME in the header of FILE.
column_of() {
  awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == name) { print i; exit } }' "$1"
}

for c in "${cases[@]}"; do
  file="$dir/$c.csv"
  [[ -r $file ]] || { echo "$0: $file is missing" >&2; exit 2; }
  for name in loss val_loss; do
    [[ -n $(column_of "$file" "$name") ]] || { echo "$0: $file has no '$name' column" >&2; exit 2; }
  done
done

# One y range (log scale) for every panel, so the panels compare at a glance.
read -r low high < <(
  for c in "${cases[@]}"; do
    file="$dir/$c.csv"
    awk -F, -v a="$(column_of "$file" loss)" -v b="$(column_of "$file" val_loss)" 'NR > 1 { print $a; print $b }' "$file"
  done | awk 'NR == 1 { lo = hi = $1 } { if ($1 < lo) lo = $1; if ($1 > hi) hi = $1 } END { print lo / 1.5, hi * 1.5 }')

if gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo; then
  terminal="pngcairo size 1100,760 font 'Sans,10'"
else
  terminal="png size 1100,760"
fi

{
  echo "set terminal $terminal"
  echo "set output '$out'"
  echo "set datafile separator ','"
  echo "set multiplot layout 2,2 title 'Frozen BatchNorm: fit loss vs evaluate on the same images (MSE, log scale)' font ',12'"
  echo "set logscale y"
  echo "set yrange [$low:$high]"
  echo "set ytics (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)"
  echo "set xrange [1:*]"
  echo "set xlabel 'epoch'"
  echo "set ylabel 'loss'"
  echo "set grid"
  echo "set key top right"
  for i in "${!cases[@]}"; do
    file="$dir/${cases[$i]}.csv"
    loss=$(column_of "$file" loss)
    val=$(column_of "$file" val_loss)
    echo "set title \"${titles[$i]}\""
    echo "plot '$file' every ::1 using (\$1+1):$loss with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title 'fit: loss (training phase)', \\"
    echo "     '$file' every ::1 using (\$1+1):$val with linespoints lw 2 dt 2 pt 5 ps 0.6 lc rgb '#d62728' title 'evaluate: val\\_loss (inference phase)'"
  done
  echo "unset multiplot"
} | gnuplot

echo "wrote $out"
