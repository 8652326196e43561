#!/usr/bin/env bash
# How long a user's translation unit takes to compile, header-only and on the
# precompiled library (minidl::precompiled), next to a file that includes only
# <Eigen/Dense> and does one product. Not a test: it measures and reports.
#
#   bash bench/compile_time.sh [REPS]     (or scripts/run compile-time [REPS])
#
# Each program is compiled (-c, no link) REPS times (default 3) with
# `c++ -std=c++20 -O2`, alternating the programs; the median wall time and the
# largest peak memory (GNU time's %M) are reported, with each time's ratio to
# the Eigen-only file. Writes bench/COMPILE_TIME.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reps="${1:-3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/minidl-compile-time.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cxx=(c++ -std=c++20 -O2 -I "$root/include" -isystem /usr/include/eigen3 -c -o "$work/out.o")

# name | extra flags | source
programs=(
  "Eigen only (one product)||$root/bench/compile_time_eigen_only.cpp"
  "usage program, header-only||$root/tests/consumer/usage.cpp"
  "usage program, precompiled|-DMINIDL_PRECOMPILED|$root/tests/consumer/usage.cpp"
  "main example, header-only||$root/examples/frozen_batchnorm.cpp"
  "main example, precompiled|-DMINIDL_PRECOMPILED|$root/examples/frozen_batchnorm.cpp"
)

for ((rep = 0; rep < reps; ++rep)); do
  for i in "${!programs[@]}"; do
    IFS='|' read -r name flags source <<<"${programs[$i]}"
    # shellcheck disable=SC2086 # flags is empty or one word
    /usr/bin/time -f "%e %M" -o "$work/time" "${cxx[@]}" $flags "$source"
    cat "$work/time" >>"$work/times.$i"
  done
done

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
base="$(cut -d' ' -f1 "$work/times.0" | median)"
{
  echo "# Compile time of one translation unit"
  echo
  echo "Produced by \`bash scripts/run compile-time $reps\` ($reps runs of each, alternating) on $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo
  echo "- **minidl**: commit $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "- **CPU**: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
  echo "- **Compiler**: $(c++ --version | head -n1), \`${cxx[*]:0:3}\` (-c: compile only, no link)"
  echo
  echo "| program | seconds (median) | ÷ Eigen only | peak memory (MiB) |"
  echo "|---|---|---|---|"
  for i in "${!programs[@]}"; do
    IFS='|' read -r name flags source <<<"${programs[$i]}"
    seconds="$(cut -d' ' -f1 "$work/times.$i" | median)"
    peak="$(cut -d' ' -f2 "$work/times.$i" | sort -n | tail -n1)"
    awk -v n="$name" -v s="$seconds" -v b="$base" -v p="$peak" 'BEGIN {printf "| %s | %.2f | %.2f | %d |\n", n, s, s / b, p / 1024}'
  done
  echo
  echo "The usage program is the README's (\`tests/consumer/usage.cpp\`); the main example is"
  echo "\`examples/frozen_batchnorm.cpp\`. \"precompiled\" compiles the same file with \`-DMINIDL_PRECOMPILED\`,"
  echo "as a target that links \`minidl::precompiled\` does; linking it then takes the library's objects."
} >"$work/report.md"
mv "$work/report.md" "$root/bench/COMPILE_TIME.md"
cat "$root/bench/COMPILE_TIME.md"
