#!/usr/bin/env bash
# Checks minidl as an installed package: configures minidl into a temporary
# build folder, installs it into a temporary prefix, then configures, builds and
# runs the outside project tests/consumer against that prefix only
# (find_package(minidl) + minidl::minidl). Stops at the first failing step and
# shows its output; removes its temporary folders in every case.
# Works from any current directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc 2>/dev/null || echo 2)"
work="$(mktemp -d "${TMPDIR:-/tmp}/minidl-consumer.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# step NAME COMMAND...: runs COMMAND quietly; on failure shows its output and stops.
step() {
  local name="$1"
  shift
  echo "check_consumer: $name"
  if ! "$@" >"$work/step.log" 2>&1; then
    cat "$work/step.log" >&2
    echo "check_consumer: FAILED at step '$name': $*" >&2
    exit 1
  fi
}
fail() {
  echo "check_consumer: FAILED: $*" >&2
  exit 1
}

step "configure minidl" cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DMINIDL_BUILD_TESTS=OFF -DMINIDL_BUILD_EXAMPLES=OFF -DMINIDL_BUILD_BENCH=OFF
step "build minidl" cmake --build "$work/build" -j "$jobs"
step "install minidl into $work/prefix" cmake --install "$work/build" --prefix "$work/prefix"
[ -f "$work/prefix/include/minidl/idx.hpp" ] || fail "the install put no include/minidl/idx.hpp into the prefix"
config="$(find "$work/prefix" -name minidlConfig.cmake -print -quit)"
[ -n "$config" ] || fail "the install put no minidlConfig.cmake into the prefix"

# Only the temporary prefix may provide minidl: no package registry, no system copy.
step "configure the consumer" cmake -S "$root/tests/consumer" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
found="$(sed -n 's/^minidl_DIR:PATH=//p' "$work/consumer/CMakeCache.txt")"
[ "$found" = "$(dirname "$config")" ] || fail "the consumer found minidl in '$found', not in the installed '$(dirname "$config")'"
step "build the consumer" cmake --build "$work/consumer" -j "$jobs"

fixture="$root/tests/data/idx/images.idx.gz"
echo "check_consumer: run the consumer"
output="$("$work/consumer/consumer" "$fixture" 2>&1)" || { echo "$output" >&2; fail "the consumer exited with an error"; }
echo "$output"
grep -q "holds 10 images of 12 pixels" <<<"$output" || fail "the consumer did not read the 10 fixture images"

echo "check_consumer: run the README's usage program"
usage="$("$work/consumer/usage" 2>&1)" || { echo "$usage" >&2; fail "the usage program exited with an error"; }
echo "$usage" | tail -n 8
grep -q "= inference-phase loss (evaluate)" <<<"$usage" || fail "the usage program printed no explain_gap table"
echo "check_consumer: run the README's save / load / fine-tune program"
tuned="$(cd "$work" && "$work/consumer/fine_tune" 2>&1)" || { echo "$tuned" >&2; fail "the fine-tune program exited with an error"; }
echo "$tuned"
grep -q "frozen base unchanged" <<<"$tuned" || fail "the fine-tune program's frozen base changed"
echo "check_consumer: OK (find_package(minidl) works from an installed prefix)"
