#!/usr/bin/env bash
# Measures lockgraph, ThreadSanitizer and Helgrind on the same example programs; the figures in
# docs/comparison.md come from this script. Usage: examples/tools/compare.sh [BUILD_DIR]
#
# For each userspace example and its fixed twin: how many reports each tool prints and the wall
# time of one run. Then the overhead workload: bank_transfer_fixed with many rounds.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
cli=$build/analyzer/lockgraph
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

examples="bank_transfer signal_logger pool_condvar rwlock_readers dining_philosophers"
rounds=${LG_COMPARE_ROUNDS:-200000}

lifecycle="double_unlock destroy_locked reinit_held use_after_destroy exit_with_lock"

# build SOURCE NAME [FLAGS...]: plain (native, lockgraph, Helgrind) and TSan variants.
build() {
  local src=$1 name=$2
  shift 2
  gcc -g -O2 -fno-omit-frame-pointer "$@" "$src" -o "$work/plain_$name" -pthread
  gcc -g -O2 -fno-omit-frame-pointer -fsanitize=thread "$@" "$src" -o "$work/tsan_$name" -pthread
}
for e in $examples; do
  build "examples/userspace/$e.c" "$e"
  build "examples/userspace/$e.c" "${e}_fixed" -DLG_EXAMPLE_FIXED
done
for e in $lifecycle; do
  build "examples/tools/lifecycle/$e.c" "$e"
done
# Class-level orders on different instances; built a second time without optimisation because the
# init-site classes depend on it (see docs/comparison.md).
build examples/tools/class_order.c class_order
build examples/tools/class_order.c class_order_O0 -O0

# seconds COMMAND...: wall time of one run, stderr kept in $work/last.err
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.err"
  end=$(date +%s.%N)
  echo "$start $end" | awk '{printf "%.2f", $2 - $1}'
}

# median3 COMMAND...: the median wall time of three runs
median3() {
  { seconds "$@"; echo; seconds "$@"; echo; seconds "$@"; echo; } | sort -n | sed -n 2p
}

# What each tool said about the last run (first line of each distinct report kind).
lockgraph_said() {
  grep -E '^WARNING: ' "$work/last.err" | sed -E 's/^WARNING: //; s|^[^ ]+/[0-9]+ still|<thread>/<tid> still|' |
    sort -u | paste -sd ';'
}
tsan_said() {
  grep -E 'WARNING: ThreadSanitizer: ' "$work/last.err" | sed 's/.*ThreadSanitizer: //; s/ (pid=.*//' |
    sort -u | paste -sd ';'
}
helgrind_said() {
  grep -E '^==[0-9]+== Thread #[0-9]+' "$work/last.err" |
    grep -vE "is the program's root thread|was created" |
    sed -E "s/^==[0-9]+== Thread #[0-9]+(: |'s | )//; s/ at 0x[0-9A-F]+//" |
    sed -E 's/"0x[0-9A-F]+ before 0x[0-9A-F]+"/"A before B"/' | sort -u | paste -sd ';'
}

echo "| program | lockgraph reports | time | TSan reports | time | Helgrind reports | time |"
echo "|---|---|---|---|---|---|---|"
for e in $examples $lifecycle class_order class_order_O0; do
  for v in "" _fixed; do
    p=$e$v
    [ -x "$work/plain_$p" ] || continue
    t1=$(seconds "$cli" run -- "$work/plain_$p")
    n1=$(grep -c '^WARNING: ' "$work/last.err")
    t2=$(seconds "$work/tsan_$p")
    n2=$(grep -c 'WARNING: ThreadSanitizer' "$work/last.err")
    t3=$(seconds valgrind --tool=helgrind "$work/plain_$p")
    n3=$(grep -oE 'ERROR SUMMARY: [0-9]+' "$work/last.err" | awk '{print $3}')
    echo "| $p | $n1 | ${t1}s | $n2 | ${t2}s | $n3 | ${t3}s |"
  done
done

echo
echo "What each tool said about the lock-lifetime programs:"
echo
echo "| program | lockgraph | TSan | Helgrind |"
echo "|---|---|---|---|"
for p in $lifecycle; do
  seconds "$cli" run -- "$work/plain_$p" >/dev/null
  l=$(lockgraph_said)
  seconds "$work/tsan_$p" >/dev/null
  t=$(tsan_said)
  seconds valgrind --tool=helgrind "$work/plain_$p" >/dev/null
  h=$(helgrind_said)
  echo "| $p | ${l:--} | ${t:--} | ${h:--} |"
done

echo
echo "Overhead workload: bank_transfer_fixed $rounds (2 threads, one after the other, $rounds"
echo "transfers each, 4 lock calls per transfer); median of three runs"
echo
echo "| run | time |"
echo "|---|---|"
echo "| native | $(median3 "$work/plain_bank_transfer_fixed" "$rounds")s |"
echo "| lockgraph run | $(median3 "$cli" run -- "$work/plain_bank_transfer_fixed" "$rounds")s |"
echo "| TSan | $(median3 "$work/tsan_bank_transfer_fixed" "$rounds")s |"
echo "| Helgrind | $(median3 valgrind --tool=helgrind "$work/plain_bank_transfer_fixed" "$rounds")s |"
