#!/bin/sh
# CTest runs each doctest case by its name (doctest_discover_tests). A name
# with a ';' (CMake's list separator) or unbalanced square brackets is cut or
# mangled on the way, so its CTest test matches no case and passes without
# running one. Fails, listing them, if any case of the test program $1 has
# such a name.
set -eu
bad=$("$1" --list-test-cases --no-version | awk '
  /^\[doctest\]/ || /^=====/ { next }
  { opening = gsub(/\[/, "["); closing = gsub(/\]/, "]") }
  index($0, ";") > 0 || opening != closing { print }')
if [ -n "$bad" ]; then
  echo "test case names CTest cannot run (a ';' or unbalanced brackets):" >&2
  echo "$bad" >&2
  exit 1
fi
echo "$1: every test case name can be run by CTest"
