#!/usr/bin/env bash
# Runs each libFuzzer target of `make fuzz` for SECONDS seconds on a copy of its seed corpus
# (tests/fuzz/corpus/TARGET; the inputs the fuzzer adds stay in build/fuzz/corpus/TARGET), and ends
# with one line per target: executions, corpus size, and what was found. A crash, a sanitizer report,
# a leak, a timeout or an out-of-memory is saved under tests/fuzz/regressions/TARGET/ (replayed by
# `make test` from then on) and makes the script fail.
#   scripts/run_fuzz.sh SECONDS BUILD_DIR TARGET...
set -u
seconds=$1 build=$2
shift 2
status=0 summary=()
for target in "$@"; do
  bin="$build/fuzz/$target"
  work="$build/corpus/$target"
  found="$build/findings/$target"
  rm -rf "$found"
  mkdir -p "$work" "$found"
  cp -n tests/fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
  log="$build/fuzz-$target.log"
  echo "== fuzz $target: $seconds s (log $log)"
  # -timeout: an input taking 10 s is a hang; -rss_limit_mb: a parse must not need 2 GB.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
         -artifact_prefix="$found/" "$work" >"$log" 2>&1
  rc=$?
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -1)
  corpus=$(ls "$work" | wc -l)
  artifacts=$(ls "$found" 2>/dev/null | wc -l)
  if [ $rc -ne 0 ] || [ "$artifacts" -gt 0 ]; then
    status=1
    mkdir -p tests/fuzz/regressions/"$target"
    cp "$found"/* tests/fuzz/regressions/"$target"/ 2>/dev/null
    grep -m3 -E "ERROR|SUMMARY|runtime error" "$log" | sed 's/^/   /'
    summary+=("$target: ${execs:-?} executions (${rate:-?}/s), corpus $corpus, FOUND $artifacts input(s) -> tests/fuzz/regressions/$target/")
  else
    summary+=("$target: ${execs:-?} executions (${rate:-?}/s), corpus $corpus, nothing found")
  fi
done
echo "== fuzz summary ($seconds s per target)"
printf '  %s\n' "${summary[@]}"
exit $status
