#!/usr/bin/env bash
# Runs real third-party programs natively and under `lockgraph run` with fixed, bounded workloads
# on loopback only, compares their output, and records wall time, peak RSS and any reports.
#
# Usage: scripts/real-programs.sh [BUILD_DIR]      (default: build; needs the `lockgraph` CLI and
#        liblockgraph.so built there). Not part of ctest: it installs Debian packages and takes
#        several minutes. Environment:
#          HELGRIND=0     skip the Valgrind Helgrind runs (default: on, where they apply)
#          ONLY="a b"     run only these programs (memcached redis sysbench stress-ng pigz zstd xz)
#          OUT=DIR        where logs and the results table go (default: BUILD_DIR/real-programs)
# Servers listen on 127.0.0.1 only, on fixed high ports, and are stopped by pid.
# Prints a Markdown table (also written to OUT/results.md) and exits 1 if any program's output
# changed, crashed, hung or produced a report that is not explained in docs/reliability.md.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd) || { echo "real-programs: no build dir" >&2; exit 2; }
lockgraph="$build/analyzer/lockgraph"
[ -x "$lockgraph" ] || { echo "real-programs: $lockgraph not built" >&2; exit 2; }
[ -f "$build/runtime/liblockgraph.so" ] || { echo "real-programs: liblockgraph.so not built" >&2; exit 2; }
out=${OUT:-$build/real-programs}
mkdir -p "$out"
helgrind=${HELGRIND:-1}
only=${ONLY:-memcached redis sysbench stress-ng pigz zstd xz}

# --- Packages (installed here, not by install-deps.sh: the test suite does not need them) ---
need=(memcached libmemcached-tools redis-server redis-tools sysbench stress-ng pigz zstd xz-utils
      time valgrind)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "real-programs: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 2
  fi
  echo "real-programs: installing ${missing[*]}" >&2
  # policy-rc.d (present in containers) keeps the packaged services from starting; stop them
  # below if a system did start them.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || exit 2
fi

failures=0
rows=()
declare -A native_time native_rss

log() { echo "real-programs: $*" >&2; }

# measure NAME MODE -- CMD...: runs CMD with GNU time; sets $wall $rss (KiB) $rc.
measure() {
  local tf="$out/$1.$2.time"
  shift 3
  /usr/bin/time -o "$tf" -f '%e %M' "$@"
  rc=$?
  read -r wall rss < <(tail -n1 "$tf")
}

# Reports in a lockgraph log file: one line per headline.
reports_in() { grep -h '^WARNING:' "$@" 2>/dev/null | sort | uniq -c | sed 's/^ *//'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 0.01; printf "%.1fx", a / b }'; }

# row NAME NATIVE_WALL NATIVE_RSS LG_WALL LG_RSS HG_WALL SAME REPORTS
row() {
  local hg="n/a"
  case $6 in
    "") ;;
    timeout) hg="> 300 s (stopped)" ;;
    *) hg="$6 s ($(ratio "$6" "$2"))" ;;
  esac
  local lg="$4 s ($(ratio "$4" "$2")), $(( $5 / 1024 )) MB"
  [ "$4" = 0 ] && lg="did not run"
  rows+=("| $1 | $2 s, $(( $3 / 1024 )) MB | $lg | $hg | n/a (needs a rebuild) | $7 | $8 |")
}

# Replaces every number by N: benchmark outputs carry timings.
shape() { sed -E 's/[0-9]+([.,][0-9]+)*/N/g; s/[[:space:]]+/ /g' "$1"; }

wait_port() {  # wait_port PORT: until something listens on 127.0.0.1:PORT (bounded, 20 s)
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# stop_server PID: SIGTERM, then SIGKILL after 10 s; returns the exit status.
stop_server() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIGTERM: killing it (hang)"
    kill -KILL "$pid"
    failures=$((failures + 1))
  fi
  wait "$pid"
}

# Peak RSS (KiB) of the server process itself: the deepest child of PID (lockgraph run forks it).
server_rss() {
  local pid=$1 child
  while child=$(pgrep -P "$pid" | head -n1) && [ -n "$child" ]; do pid=$child; done
  awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0
}

# --- Data for the compressors: 8 MB of deterministic, moderately compressible text ------------
data="$out/data.txt"
if [ ! -s "$data" ]; then
  awk 'BEGIN { srand(7); for (i = 0; i < 140000; i++) {
         printf "%08d", i; for (j = 0; j < 8; j++) printf " w%05d", int(rand() * rand() * 99999);
         printf "\n" } }' > "$data"
fi

# --- Compressors: compress and decompress, outputs compared byte for byte ----------------------
run_compressor() {  # run_compressor NAME LABEL COMPRESS_CMD DECOMPRESS_CMD (commands read stdin)
  local name=$1 label=$2 comp=$3 decomp=$4
  local sum_native sum_lg same="yes" reports hg=""
  log "$name: native"
  measure "$name" native -- sh -c "$comp < '$data' > '$out/$name.native.z' && $decomp < '$out/$name.native.z' > '$out/$name.native.out'"
  local nw=$wall nr=$rss
  [ "$rc" -eq 0 ] || { log "$name: native run failed ($rc)"; failures=$((failures + 1)); }
  log "$name: under lockgraph run"
  rm -f "$out/$name.lg.reports"
  measure "$name" lockgraph -- "$lockgraph" run --log-file "$out/$name.lg.reports" -- \
    sh -c "$comp < '$data' > '$out/$name.lg.z' && $decomp < '$out/$name.lg.z' > '$out/$name.lg.out'"
  local lw=$wall lr=$rss
  [ "$rc" -eq 0 ] || { log "$name: failed under lockgraph ($rc)"; same="NO (exit $rc)"; failures=$((failures + 1)); }
  if ! cmp -s "$out/$name.native.z" "$out/$name.lg.z" || ! cmp -s "$data" "$out/$name.lg.out"; then
    same="NO (output differs)"
    failures=$((failures + 1))
  fi
  if [ "$helgrind" = 1 ]; then
    log "$name: under helgrind"
    measure "$name" helgrind -- timeout 300 valgrind --tool=helgrind -q --trace-children=yes \
      --log-file="$out/$name.helgrind.%p.txt" \
      sh -c "$comp < '$data' > '$out/$name.hg.z' && $decomp < '$out/$name.hg.z' > '$out/$name.hg.out'"
    hg=$wall
    [ "$rc" -eq 124 ] && hg=timeout
  fi
  reports=$(reports_in "$out/$name.lg.reports")
  row "$label" "$nw" "$nr" "$lw" "$lr" "$hg" "$same" "${reports:-none}"
}

# --- sysbench's mutex test ----------------------------------------------------------------------
run_sysbench() {
  local args=(mutex --threads=4 --mutex-num=4096 --mutex-locks=300000 --mutex-loops=100 run)
  local same="yes" hg=""
  log "sysbench: native"
  measure sysbench native -- sh -c "sysbench ${args[*]} > '$out/sysbench.native.out'"
  local nw=$wall nr=$rss
  log "sysbench: under lockgraph run"
  rm -f "$out/sysbench.lg.reports"
  measure sysbench lockgraph -- "$lockgraph" run --log-file "$out/sysbench.lg.reports" -- \
    sh -c "sysbench ${args[*]} > '$out/sysbench.lg.out'"
  local lw=$wall lr=$rss
  [ "$rc" -eq 0 ] || { same="NO (exit $rc)"; failures=$((failures + 1)); }
  if ! diff <(shape "$out/sysbench.native.out") <(shape "$out/sysbench.lg.out") >/dev/null; then
    same="NO (output differs)"; failures=$((failures + 1))
  fi
  if [ "$helgrind" = 1 ]; then
    log "sysbench: under helgrind"
    measure sysbench helgrind -- timeout 300 valgrind --tool=helgrind -q --log-file="$out/sysbench.helgrind.txt" \
      sysbench "${args[@]}" > /dev/null
    hg=$wall
    [ "$rc" -eq 124 ] && hg=timeout
  fi
  local reports
  reports=$(reports_in "$out/sysbench.lg.reports")
  row "sysbench mutex (4 threads)" "$nw" "$nr" "$lw" "$lr" "$hg" "$same" "${reports:-none}"
}

# --- stress-ng: mutex, pthread and signal stressors (forked workers) ----------------------------
run_stress_ng() {
  local args=(--mutex 2 --mutex-ops 20000 --pthread 2 --pthread-ops 500 --signal 2
              --signal-ops 20000 --timeout 30 --temp-path "$out")
  local same="yes"
  log "stress-ng: native"
  measure stress-ng native -- sh -c "stress-ng ${args[*]} > '$out/stress-ng.native.out' 2>&1"
  local nw=$wall nr=$rss nrc=$rc
  log "stress-ng: under lockgraph run"
  rm -f "$out/stress-ng.lg.reports"
  measure stress-ng lockgraph -- "$lockgraph" run --log-file "$out/stress-ng.lg.reports" -- \
    sh -c "stress-ng ${args[*]} > '$out/stress-ng.lg.out' 2>&1"
  local lw=$wall lr=$rss
  [ "$rc" -eq "$nrc" ] || { same="NO (exit $rc, natively $nrc)"; failures=$((failures + 1)); }
  # The lines that say what ran and how it ended (stress-ng prints the rest with timings).
  if ! diff <(grep -E 'dispatching|passed|failed|successful|unsuccessful' "$out/stress-ng.native.out" | sed -E 's/^stress-ng: [a-z]+: +\[[0-9]+\] //; s/[0-9.]+ ?(secs|s)//g') \
            <(grep -E 'dispatching|passed|failed|successful|unsuccessful' "$out/stress-ng.lg.out" | sed -E 's/^stress-ng: [a-z]+: +\[[0-9]+\] //; s/[0-9.]+ ?(secs|s)//g') >/dev/null; then
    same="NO (output differs)"; failures=$((failures + 1))
  fi
  local reports
  reports=$(reports_in "$out/stress-ng.lg.reports")
  # stress-ng forks and installs its own ptrace-like watchdogs: Helgrind does not apply well.
  row "stress-ng mutex+pthread+signal" "$nw" "$nr" "$lw" "$lr" "" "$same" "${reports:-none}"
}

# --- memcached + memaslap (memcaslap in Debian) -------------------------------------------------
memcached_check() {  # fixed request, printed response
  exec 3<>/dev/tcp/127.0.0.1/$1
  printf 'set lockgraph 0 0 5\r\nhello\r\nget lockgraph\r\nincr n 1\r\nset n 0 0 1\r\n7\r\nincr n 5\r\nquit\r\n' >&3
  timeout 5 cat <&3
  exec 3<&-
}

run_memcached() {
  local port=47211 same="yes" hg="" nw=0 nr=0 lw=0 lr=0
  local mc=(memcached -l 127.0.0.1 -p "$port" -U 0 -t 4 -m 64 -c 256 -u nobody)
  local mode
  # Not under Helgrind: memcached (as root) raises RLIMIT_NOFILE, which Valgrind refuses.
  for mode in native lockgraph; do
    log "memcached: $mode"
    case $mode in
      native) "${mc[@]}" & ;;
      lockgraph) rm -f "$out/memcached.lg.reports"
                 "$lockgraph" run --log-file "$out/memcached.lg.reports" -- "${mc[@]}" & ;;
    esac
    local spid=$!
    if ! wait_port "$port"; then
      log "memcached ($mode) did not start within 20 s"; same="NO ($mode: no start, hang)"
      failures=$((failures + 1)); stop_server "$spid"; continue
    fi
    local x=100000
    measure memcached "$mode" -- sh -c "memcaslap -s 127.0.0.1:$port -x $x -T 2 -c 16 > '$out/memcached.$mode.load' 2>&1"
    local w=$wall r
    memcached_check "$port" > "$out/memcached.$mode.check"
    r=$(server_rss "$spid")
    stop_server "$spid"
    local src=$?
    case $mode in
      native) nw=$w nr=$r ;;
      lockgraph) lw=$w lr=$r
        [ "$src" -eq 0 ] || [ "$src" -eq 143 ] || { same="NO (exit $src)"; failures=$((failures + 1)); } ;;
    esac
  done
  [ -f "$out/memcached.lockgraph.load" ] || { row "memcached -t 4 + memaslap" "$nw" "$nr" 0 0 "" "$same" "-"; return; }
  cmp -s "$out/memcached.native.check" "$out/memcached.lockgraph.check" ||
    { same="NO (responses differ)"; failures=$((failures + 1)); }
  grep -q 'Run time' "$out/memcached.lockgraph.load" || { same="NO (load generator failed)"; failures=$((failures + 1)); }
  local reports
  reports=$(reports_in "$out/memcached.lg.reports")
  row "memcached -t 4 + memaslap (100k ops)" "$nw" "$nr" "$lw" "$lr" "$hg" "$same" "${reports:-none}"
}

# --- redis-server with io-threads + redis-benchmark ---------------------------------------------
redis_check() {
  redis-cli -h 127.0.0.1 -p "$1" set lockgraph hello
  redis-cli -h 127.0.0.1 -p "$1" get lockgraph
  redis-cli -h 127.0.0.1 -p "$1" del n
  redis-cli -h 127.0.0.1 -p "$1" incrby n 7
  redis-cli -h 127.0.0.1 -p "$1" lpush l a b c
  redis-cli -h 127.0.0.1 -p "$1" lrange l 0 -1
}

run_redis() {
  local port=46379 same="yes" nw=0 nr=0 lw=0 lr=0
  local srv=(redis-server --port "$port" --bind 127.0.0.1 --io-threads 2 --io-threads-do-reads yes
             --save "" --appendonly no --protected-mode yes --dir "$out" --logfile "")
  local mode
  for mode in native lockgraph; do
    log "redis: $mode"
    case $mode in
      native) "${srv[@]}" > "$out/redis.$mode.server" 2>&1 & ;;
      lockgraph) rm -f "$out/redis.lg.reports"
                 "$lockgraph" run --log-file "$out/redis.lg.reports" -- "${srv[@]}" \
                   > "$out/redis.$mode.server" 2>&1 & ;;
    esac
    local spid=$!
    if ! wait_port "$port"; then
      log "redis ($mode) did not start within 20 s"; same="NO ($mode: no start, hang)"
      failures=$((failures + 1)); stop_server "$spid"; continue
    fi
    redis-cli -h 127.0.0.1 -p "$port" flushall > /dev/null
    measure redis "$mode" -- sh -c "redis-benchmark -h 127.0.0.1 -p $port -n 3000 -c 8 -t set,get,incr,lpush -q > '$out/redis.$mode.load' 2>&1"
    local w=$wall r
    redis_check "$port" > "$out/redis.$mode.check"
    r=$(server_rss "$spid")
    stop_server "$spid"
    local src=$?
    case $mode in
      native) nw=$w nr=$r ;;
      lockgraph) lw=$w lr=$r
        [ "$src" -eq 0 ] || { same="NO (exit $src)"; failures=$((failures + 1)); } ;;
    esac
  done
  [ -f "$out/redis.lockgraph.load" ] || { row "redis-server --io-threads 2 + redis-benchmark" "$nw" "$nr" 0 0 "" "$same" "-"; return; }
  cmp -s "$out/redis.native.check" "$out/redis.lockgraph.check" ||
    { same="NO (responses differ)"; failures=$((failures + 1)); }
  diff <(shape "$out/redis.native.load" | tr '\r' '\n' | grep -v '^ *$' | sed 's/:.*//' | sort -u) \
       <(shape "$out/redis.lockgraph.load" | tr '\r' '\n' | grep -v '^ *$' | sed 's/:.*//' | sort -u) > /dev/null ||
    { same="NO (benchmark output differs)"; failures=$((failures + 1)); }
  local reports
  reports=$(reports_in "$out/redis.lg.reports")
  # Helgrind is not run on redis: jemalloc and io-threads make it report thousands of races.
  row "redis-server --io-threads 2 + redis-benchmark (12k requests)" "$nw" "$nr" "$lw" "$lr" "" "$same" "${reports:-none}"
}

for p in $only; do
  case $p in
    memcached) run_memcached ;;
    redis) run_redis ;;
    sysbench) run_sysbench ;;
    stress-ng) run_stress_ng ;;
    pigz) run_compressor pigz "pigz -p 2 (8 MB, both ways)" "pigz -p 2 -c" "pigz -d -p 2 -c" ;;
    zstd) run_compressor zstd "zstd -T2 (8 MB, both ways)" "zstd -q -T2 -B1M -c" "zstd -q -d -c" ;;
    xz) run_compressor xz "xz -T2 (8 MB, both ways)" "xz -T2 -1 --block-size=1MiB -c" "xz -d -T2 -c" ;;
    *) log "unknown program '$p'"; exit 2 ;;
  esac
done

{
  echo "| Program (workload) | Native: wall, peak RSS | lockgraph run: wall (slowdown), peak RSS | Helgrind: wall (slowdown) | TSan | Same output | Reports |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$out/results.md"
[ "$failures" -eq 0 ] || { log "$failures failure(s); logs in $out"; exit 1; }
log "all programs ran the same under lockgraph; logs in $out"
