#!/usr/bin/env bash
# Runs every test suite given on the command line, shows their output, and ends with one line
# "tests: N passed, M failed" (test cases over all suites). Exits non-zero if any suite fails.
set -u
passed=0 failed=0 status=0
for suite in "$@"; do
  echo "== $suite"
  out=$(OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$suite" 2>&1)
  rc=$?
  echo "$out"
  line=$(grep -E '^\[doctest\] test cases:' <<<"$out" | tail -1)
  p=$(sed -nE 's/.*\| *([0-9]+) passed.*/\1/p' <<<"$line")
  f=$(sed -nE 's/.*\| *([0-9]+) failed.*/\1/p' <<<"$line")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ $rc -ne 0 ]; then
    status=1
    [ "${f:-0}" -eq 0 ] && failed=$((failed + 1))  # a crash before doctest's summary still counts
  fi
done
echo "tests: $passed passed, $failed failed"
exit $status
