#!/usr/bin/env bash
# idle.sh [SECONDS]: how fast an idle mesh's audit logs grow.
#
# Runs `dxmesh demo --serve` (a small province, the whole cycle, then the
# seven nodes left running with nothing to do), counts every node's audit
# log entries, waits SECONDS (default 120) and counts again. Witnessing
# goes on all the while (each node's checkpoints cosigned by the others);
# a log should grow only by what really happens, so an idle node's log
# stays still. Prints entries per node over the wait and per hour, then
# `N passed, N failed` (a node passes if it grew by at most 2 entries a
# minute) and exits non-zero if any failed.
#
# Usage (from anywhere):
#   tests/bench/idle.sh 600                  # builds target/release/dxmesh first
#   DXMESH=target/debug/dxmesh tests/bench/idle.sh 60
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-120}
if [[ -z ${DXMESH:-} ]]; then
  cargo build --release --quiet
  DXMESH=target/release/dxmesh
fi
OUT=${OUT:-target/idle}
rm -rf "$OUT" "$OUT.log"
mkdir -p "$(dirname "$OUT")"
"$DXMESH" demo --residents 2000 --serve --out "$OUT" >"$OUT.log" 2>&1 &
DEMO=$!
trap 'kill -INT $DEMO 2>/dev/null || true; wait $DEMO 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  grep -q "serving the mesh until Ctrl-C" "$OUT.log" && break
  kill -0 $DEMO 2>/dev/null || { cat "$OUT.log"; echo "the demo stopped"; exit 1; }
  sleep 1
done
grep -q "serving the mesh until Ctrl-C" "$OUT.log" || { echo "the mesh did not come up"; exit 1; }
NODES=(public_security civil_affairs health disabled_federation hr comparator ministry)
# Entries in a node's log now (an export writes no entry).
entries() {
  "$DXMESH" audit export --dir "$OUT/nodes/$1" --out "$OUT/snap-$1-$2" |
    grep -o '([0-9]* log entries)' | grep -o '[0-9]*'
}
declare -A before
for n in "${NODES[@]}"; do before[$n]=$(entries "$n" 0); done
sleep "$SECS"
passed=0 failed=0
printf '%-20s %8s %8s %8s %12s\n' node before after grew per_hour
for n in "${NODES[@]}"; do
  after=$(entries "$n" 1)
  grew=$((after - before[$n]))
  per_hour=$((grew * 3600 / SECS))
  printf '%-20s %8s %8s %8s %12s\n' "$n" "${before[$n]}" "$after" "$grew" "$per_hour"
  if ((grew * 60 <= 2 * SECS)); then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "idle for ${SECS}s"
echo "$passed passed, $failed failed"
((failed == 0))
