#!/usr/bin/env bash
# Fuzzes minidl's file readers and model loaders with libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer, SECONDS each (default 60):
#   fuzz_idx           the IDX reader
#   fuzz_safetensors   the safetensors reader (and a re-encoding round trip)
#   fuzz_load_model    load_model of untrusted bytes, predict on the model, and
#                      a save_model/load_model round trip
#   fuzz_load_weights  load_weights and load_pytorch_state_dict into fixed
#                      models of every layer type, then predict
# each on a fresh copy of its seed corpus (tests/fuzz/corpus/, made by
# make_corpus.py and make_load_corpus.cpp) in a temporary folder under /tmp,
# with its dictionary (safetensors.dict, load.dict). Fails on any crash,
# sanitizer report, leak, broken promise (the targets abort), timeout (10 s per
# input) or out-of-memory (2 GB); the input that did it is kept and its path
# printed.
#
#   bash tests/fuzz/run.sh [SECONDS]      (scripts/run fuzz installs clang first)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: bash tests/fuzz/run.sh [SECONDS]   (a positive whole number, default 60)" >&2
  exit 2
fi
cxx="${MINIDL_FUZZ_CXX:-clang++}"
work="$(mktemp -d /tmp/minidl-fuzz.XXXXXX)"
# fuzz_load_model's save/load round trip writes files, which save_model
# fsyncs: into a RAM-backed folder when there is one (fsync is then free),
# else under $work. The targets get it as TMPDIR.
scratch="$(mktemp -d /dev/shm/minidl-fuzz.XXXXXX 2>/dev/null || true)"
[ -n "$scratch" ] || { scratch="$work/tmp"; mkdir "$scratch"; }
keep=0
trap '[ "$keep" -eq 1 ] || rm -rf "$work"; rm -rf "$scratch"' EXIT

targets=(idx safetensors load_model load_weights)
declare -A dicts=([safetensors]=safetensors.dict [load_model]=load.dict [load_weights]=load.dict)
for target in "${targets[@]}"; do
  echo "fuzz: building fuzz_$target"
  # -fno-sanitize-recover: an undefined-behaviour report stops the run like a crash.
  "$cxx" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I "$root/include" -isystem /usr/include/eigen3 \
    "$root/tests/fuzz/fuzz_$target.cpp" -lz -o "$work/fuzz_$target"
done

summary=()
status=0
for target in "${targets[@]}"; do
  corpus="$work/corpus-$target"
  mkdir -p "$corpus" "$work/artifacts-$target"
  cp "$root/tests/fuzz/corpus/$target/"* "$corpus/"
  dict=()
  [ -n "${dicts[$target]:-}" ] && dict=(-dict="$root/tests/fuzz/${dicts[$target]}")
  echo "fuzz: running fuzz_$target for $seconds s"
  set +e
  # print_stacktrace: an undefined-behaviour report names where it happened.
  TMPDIR="$scratch" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" "$work/fuzz_$target" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts-$target/" \
    >"$work/$target.log" 2>&1
  rc=$?
  set -e
  # libFuzzer's final lines: "Done N runs in S second(s)" and the stat:: lines.
  done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$work/$target.log" | tail -1 || true)"
  execs="$(grep -E '^stat::number_of_executed_units:' "$work/$target.log" | awk '{print $2}' | tail -1 || true)"
  rate="$(grep -E '^stat::average_exec_per_sec:' "$work/$target.log" | awk '{print $2}' | tail -1 || true)"
  if [ "$rc" -ne 0 ]; then
    status=1
    keep=1
    tail -n 60 "$work/$target.log" >&2
    echo "fuzz: fuzz_$target FAILED (exit $rc); input and log kept in $work/artifacts-$target/ and $work/$target.log" >&2
    summary+=("fuzz_$target: FAILED after ${execs:-?} executions ($work/artifacts-$target/)")
  else
    echo "fuzz: fuzz_$target: $done_line"
    summary+=("fuzz_$target: ${execs:-?} executions in $seconds s (${rate:-?} exec/s), no failure; $done_line")
  fi
done

echo
printf 'fuzz: %s\n' "${summary[@]}"
exit "$status"
