#!/usr/bin/env bash
# The ministry's national index at scale (issue 16): builds an index of N
# records with the node's index builder, then answers Q queried IDs (half
# present) in the comparator's batches of 100,000, each step in its own
# process, and prints each step's time and peak memory.
#
# Usage: tests/bench/national.sh [N] [Q]   (default 200000000 10000000)
# The index takes 12 bytes a record (2.4 GB at N = 200 M) under
# target/bench-national (or DXMESH_BENCH_DIR); building needs as much again
# for its sorted runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-200000000}"
Q="${2:-10000000}"
export DXMESH_BENCH_DIR="${DXMESH_BENCH_DIR:-$PWD/target/bench-national}"
rm -rf "$DXMESH_BENCH_DIR" && mkdir -p "$DXMESH_BENCH_DIR"
cargo bench -p dxmesh-tests --bench national --no-run >/dev/null 2>&1
DXMESH_NATIONAL_STEP=build DXMESH_NATIONAL_N="$N" cargo bench -q -p dxmesh-tests --bench national 2>/dev/null
DXMESH_NATIONAL_STEP=query DXMESH_NATIONAL_N="$N" DXMESH_NATIONAL_Q="$Q" cargo bench -q -p dxmesh-tests --bench national 2>/dev/null
