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

# The README's "Install" commands, on a machine without doctest (hidden from
# CMake): tests and examples off, the precompiled library on.
install_args=(-DMINIDL_BUILD_TESTS=OFF -DMINIDL_BUILD_EXAMPLES=OFF -DMINIDL_BUILD_PRECOMPILED=ON)
step "configure minidl (no doctest)" cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_DISABLE_FIND_PACKAGE_doctest=ON "${install_args[@]}"
step "configure minidl with its defaults (no doctest)" cmake -S "$root" -B "$work/build-defaults" \
  -DCMAKE_DISABLE_FIND_PACKAGE_doctest=ON
step "build minidl (the precompiled library)" cmake --build "$work/build" -j "$jobs"
# Its -Werror is only on in a developer build; here a warning is a failure too.
if grep -q "warning:" "$work/step.log"; then
  cat "$work/step.log" >&2
  fail "the precompiled library built with warnings"
fi
step "install minidl into $work/prefix" cmake --install "$work/build" --prefix "$work/prefix"
for file in include/minidl/idx.hpp include/minidl/precompiled.hpp; do
  [ -f "$work/prefix/$file" ] || fail "the install put no $file into the prefix"
done
config="$(find "$work/prefix" -name minidlConfig.cmake -print -quit)"
[ -n "$config" ] || fail "the install put no minidlConfig.cmake into the prefix"
pcdir="$(dirname "$(find "$work/prefix" -name minidl.pc -print -quit)")"
for pc in minidl minidl-idx minidl-io minidl-precompiled; do
  [ -f "$pcdir/$pc.pc" ] || fail "the install put no $pc.pc into the prefix"
done
[ -n "$(find "$work/prefix" -name libminidl_precompiled.a -print -quit)" ] ||
  fail "the install put no libminidl_precompiled.a into the prefix"

# Only the temporary prefix may provide minidl: no package registry, no system copy.
consumer_args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
step "configure the consumer" cmake -S "$root/tests/consumer" -B "$work/consumer" "${consumer_args[@]}"
found="$(sed -n 's/^minidl_DIR:PATH=//p' "$work/consumer/CMakeCache.txt")"
[ "$found" = "$(dirname "$config")" ] || fail "the consumer found minidl in '$found', not in the installed '$(dirname "$config")'"
step "build the consumer" cmake --build "$work/consumer" -j "$jobs"

fixture="$root/tests/data/idx/images.idx.gz"
echo "check_consumer: run the consumer"
output="$("$work/consumer/consumer" "$fixture" 2>&1)" || { echo "$output" >&2; fail "the consumer exited with an error"; }
echo "$output"
grep -q "holds 10 images of 12 pixels" <<<"$output" || fail "the consumer did not read the 10 fixture images"

# run_usage NAME: runs the usage program NAME; prints its last lines; its
# result (from "fit's last loss" on, without the timed progress lines) in $result.
run_usage() {
  local out
  out="$("$work/consumer/$1" 2>&1)" || { echo "$out" >&2; fail "$1 exited with an error"; }
  echo "$out" | tail -n 8
  grep -q "= inference-phase loss (evaluate)" <<<"$out" || fail "$1 printed no explain_gap table"
  result="$(sed -n "/^fit's last loss/,\$p" <<<"$out")"
}
echo "check_consumer: run the README's usage program (header-only)"
run_usage usage
header_only="$result"
echo "check_consumer: run it with minidl::native"
run_usage usage_native
echo "check_consumer: run it on minidl::precompiled"
run_usage usage_precompiled
[ "$result" = "$header_only" ] || fail "the precompiled usage program printed other numbers than the header-only one"
echo "check_consumer: run the README's save / load / fine-tune program"
tuned="$(cd "$work" && "$work/consumer/fine_tune" 2>&1)" || { echo "$tuned" >&2; fail "the fine-tune program exited with an error"; }
echo "$tuned"
grep -q "frozen base unchanged" <<<"$tuned" || fail "the fine-tune program's frozen base changed"

# A user without zlib and nlohmann/json: find_package(minidl) still succeeds
# with minidl::core (and the programs that need only it); the other parts are absent.
step "configure the consumer without zlib and nlohmann/json" cmake -S "$root/tests/consumer" \
  -B "$work/consumer-core" "${consumer_args[@]}" -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON
targets="$(cmake --build "$work/consumer-core" --target help)"
grep -qw usage <<<"$targets" || fail "without zlib and nlohmann/json the core-only usage program was not configured"
if grep -qwE "consumer|fine_tune" <<<"$targets"; then
  fail "without zlib and nlohmann/json the consumer still configured programs that need them"
fi

# pkg-config, from the relocatable .pc files: the IDX program (zlib through
# Requires) and the usage program on the precompiled library.
export PKG_CONFIG_PATH="$pcdir"
read -r -a idx_flags <<<"$(pkg-config --cflags --libs minidl-idx)"
step "build the consumer with pkg-config (minidl-idx)" \
  c++ -std=c++17 -O1 -Wall -Wextra -Wpedantic -Werror "$root/tests/consumer/main.cpp" -o "$work/consumer-pc" "${idx_flags[@]}"
"$work/consumer-pc" "$fixture" | grep -q "holds 10 images of 12 pixels" || fail "the pkg-config consumer did not read the fixture"
read -r -a precompiled_flags <<<"$(pkg-config --cflags --libs minidl-precompiled)"
step "build the usage program with pkg-config (minidl-precompiled)" \
  c++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -Werror "$root/tests/consumer/usage.cpp" -o "$work/usage-pc" \
  "${precompiled_flags[@]}"
"$work/usage-pc" | grep -q "= inference-phase loss (evaluate)" || fail "the pkg-config usage program printed no explain_gap table"
echo "check_consumer: OK (find_package(minidl) and pkg-config work from an installed prefix)"
