#!/usr/bin/env bash
# One command for the whole-program comparison (issue 7): builds the harness, runs every mode
# natively, under `lockgraph run`, `lockgraph run --record`, ThreadSanitizer and Helgrind, and
# prints one table (ns/op, ratio to native, peak RSS, planted inversion reported), then
# `lockgraph analyze --stats` on the recorded logs. Not part of ctest: it reports, never fails
# on a timing.
#
# Environment: BUILD (build dir, default build-perf), MODES (default: all), REPEAT (runs per
# native/lockgraph/record cell, the median is shown; default 3), TOOLS (default: native lockgraph
# record tsan helgrind), HELGRIND_SCALE (divides the iteration counts under Helgrind; default
# 100), SCALE (divides every iteration count; default 1), KEEP (keep the work directory),
# NO_BUILD (use what is in BUILD as it is), TIMEOUT (seconds per run, default 150),
# ANALYZE_TIMEOUT (seconds per analyze, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build-perf}
MODES=${MODES:-"flat flat-mt nested nested-mt many many-ordered rwlock contended private"}
TOOLS=${TOOLS:-"native lockgraph record tsan helgrind"}
REPEAT=${REPEAT:-3}
HELGRIND_SCALE=${HELGRIND_SCALE:-100}
SCALE=${SCALE:-1}  # divides every iteration count (quick trial runs)
TIMEOUT=${TIMEOUT:-150}  # seconds per run; a run cut off shows "no result"
ANALYZE_TIMEOUT=${ANALYZE_TIMEOUT:-60}  # seconds per `lockgraph analyze`

# Iterations per mode (the harness's own defaults, spelled out so Helgrind can scale them).
declare -A ITER=([flat]=10000000 [flat-mt]=10000000 [nested]=4000000 [nested-mt]=4000000 [many]=2000000 [many-ordered]=2000000 [rwlock]=10000000
                 [contended]=2000000 [private]=5000000)

if [[ ! -f $BUILD/build.ninja && ! -f $BUILD/Makefile ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
targets="lockgraph lockgraph_runtime lock_harness"
[[ " $TOOLS " == *" tsan "* ]] && targets+=" lock_harness_tsan"
[[ -n ${NO_BUILD:-} ]] || cmake --build "$BUILD" --target $targets -j2 >/dev/null

HARNESS=$BUILD/bench/harness/lock_harness
HARNESS_TSAN=$BUILD/bench/harness/tsan/lock_harness
LOCKGRAPH=$BUILD/analyzer/lockgraph
WORK=$(mktemp -d /tmp/lockgraph-bench.XXXXXX)
if [[ -z ${KEEP:-} ]]; then trap 'rm -rf "$WORK"' EXIT; else echo "work directory: $WORK"; fi

# What each tool prints for the planted lock-order inversion.
inversion_pattern() {
  case $1 in
    native) echo '^$NEVER' ;;
    lockgraph|record) echo 'possible circular locking dependency detected|instance-order deadlock' ;;
    tsan) echo 'lock-order-inversion' ;;
    helgrind) echo 'lock order .* violated' ;;
  esac
}

# run TOOL MODE ITERATIONS OUT_PREFIX: one run; stdout, stderr and peak RSS (KiB) into files.
run() {
  local tool=$1 mode=$2 n=$3 out=$4
  local -a cmd
  case $tool in
    native) cmd=("$HARNESS" "$mode" "$n") ;;
    lockgraph) cmd=("$LOCKGRAPH" run -- "$HARNESS" "$mode" "$n") ;;
    record) cmd=("$LOCKGRAPH" run --record "$WORK/$mode.lglog" -- "$HARNESS" "$mode" "$n") ;;
    tsan) cmd=(env TSAN_OPTIONS="detect_deadlocks=1 second_deadlock_stack=1 report_signal_unsafe=0"
               "$HARNESS_TSAN" "$mode" "$n") ;;
    helgrind) cmd=(valgrind --tool=helgrind "$HARNESS" "$mode" "$n") ;;
  esac
  rm -f "$WORK/$mode.lglog"
  /usr/bin/time -f %M -o "$out.rss" timeout "$TIMEOUT" "${cmd[@]}" >"$out.out" 2>"$out.err" || true
}

# field NAME LINE: the value of NAME=... in a harness result line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

declare -A NS CPU RSS INV
for mode in $MODES; do
  for tool in $TOOLS; do
    n=$(( ${ITER[$mode]} / SCALE ))
    reps=$REPEAT
    case $tool in
      helgrind) n=$(( n / HELGRIND_SCALE )); reps=1
                # Helgrind's lock-order graph over 10,000 locks slows every later op down.
                [[ $mode == many* ]] && n=$(( n / 10 )) ;;
      tsan) reps=1 ;;
    esac
    for ((r = 0; r < reps; r++)); do
      # Each recording starts from no log (the recorder never overwrites one, it would write
      # beside it) and leaves none of the earlier runs' dirty pages behind: the write path's
      # kernel time is part of the recorded run's CPU time.
      [[ $tool == record ]] && rm -f "$WORK/$mode.lglog" "$WORK/$mode.lglog".*
      run "$tool" "$mode" "$n" "$WORK/$tool.$mode.$r"
    done
    [[ $tool == record && -f $WORK/$mode.lglog ]] && cp "$WORK/$mode.lglog" "$WORK/keep.$mode.lglog"
    # Each result line (many prints many-learn and many); median over the repeats by CPU time.
    for sub in $(sed -n 's/^mode=\([^ ]*\).*/\1/p' "$WORK/$tool.$mode.0.out"); do
      best=$(for ((r = 0; r < reps; r++)); do
               line=$(grep "^mode=$sub " "$WORK/$tool.$mode.$r.out" || true)
               [[ -n $line ]] && echo "$(field cpu_ns_per_op "$line") $r"
             done | sort -g | awk '{a[NR]=$2} END {print a[int((NR+1)/2)]}')
      line=$(grep "^mode=$sub " "$WORK/$tool.$mode.$best.out")
      NS[$sub,$tool]=$(field ns_per_op "$line")
      CPU[$sub,$tool]=$(field cpu_ns_per_op "$line")
      RSS[$sub,$tool]=$(cat "$WORK/$tool.$mode.$best.rss" | tail -1)
      if grep -Eq "$(inversion_pattern "$tool")" "$WORK/$tool.$mode.$best.err"; then
        INV[$sub,$tool]=yes
      else
        INV[$sub,$tool]=no
      fi
      [[ $tool == native ]] && INV[$sub,$tool]=-
    done
    if ! grep -q '^mode=' "$WORK/$tool.$mode.0.out"; then
      echo "warning: $tool $mode printed no result; stderr:" >&2
      tail -5 "$WORK/$tool.$mode.0.err" >&2
    fi
  done
done

echo "# lockgraph bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average$(uptime | sed 's/.*load average//')"
echo "# ns/op = wall time per op; cpu ns/op = process CPU time per lock pair (nested, nested-mt: per chain"
echo "# of 4), summed over threads; ratios against native; RSS = peak resident set (/usr/bin/time %M)."
echo "# Helgrind ran 1/$HELGRIND_SCALE of the iterations (1/$((HELGRIND_SCALE * 10)) for many); native and lockgraph cells are the median"
echo "# of $REPEAT runs, record cells too (1 run for tsan, helgrind)."
printf '%-11s %-10s %10s %7s %10s %7s %10s  %s\n' mode tool "ns/op" ratio "cpu ns/op" ratio "RSS KiB" "inversion reported"
for mode in $MODES; do
  subs=$mode
  [[ $mode == many ]] && subs="many-learn many"
  [[ $mode == many-ordered ]] && subs="many-ordered-learn many-ordered"
  for sub in $subs; do
    for tool in $TOOLS; do
      ns=${NS[$sub,$tool]:-}
      if [[ -z $ns ]]; then
        printf '%-11s %-10s %10s\n' "$sub" "$tool" "no result"
        continue
      fi
      base=${NS[$sub,native]:-}
      cbase=${CPU[$sub,native]:-}
      ratio=$(awk -v a="$ns" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
      cratio=$(awk -v a="${CPU[$sub,$tool]}" -v b="$cbase" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
      inv=${INV[$sub,$tool]}
      [[ $sub == *-learn ]] && inv=-   # the inversion is planted after the steady phase
      printf '%-11s %-10s %10s %7s %10s %7s %10s  %s\n' "$sub" "$tool" "$ns" "$ratio" \
        "${CPU[$sub,$tool]}" "$cratio" "${RSS[$sub,$tool]}" "$inv"
    done
  done
done

if [[ " $TOOLS " == *" record "* ]]; then
  echo
  echo "# lockgraph analyze --stats on each recorded log (the run's events; events/s = read + replay)"
  for mode in $MODES; do
    log=$WORK/keep.$mode.lglog
    [[ -f $log ]] || continue
    size=$(stat -c %s "$log")
    stats=$(timeout "$ANALYZE_TIMEOUT" "$LOCKGRAPH" analyze --stats --no-progress "$log" 2>&1 |
            grep 'events/s' | sed 's/^lockgraph: //' || true)
    [[ -n $stats ]] || stats="analyze did not finish within ${ANALYZE_TIMEOUT}s"
    echo "$mode: $size bytes; $stats"
  done
fi
