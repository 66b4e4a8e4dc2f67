#!/usr/bin/env bash
# Whole-cycle benchmark (issue 6), in one run on this machine:
#  1. generate a province (`dxmesh synth`, not timed in the comparison);
#  2. dxmesh: `dxmesh demo --input` on it — seven node processes; import and
#     publish at five providers, pulls, the comparison pass, disclosure,
#     the ministry query (the audit export/verify step is reported apart);
#  3. DuckDB: load the same CSVs and compute the same `uninsured` list with
#     ID normalisation in SQL (tests/bench/duckdb_uninsured.py);
# and prints both times and the ratio, plus the comparison pass's merge rate
# and the comparator's peak memory.
#
# Usage: tests/bench/cycle.sh [RESIDENTS]   (default 10000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-10000000}"
W="${DXMESH_BENCH_DIR:-target/bench-cycle}"
cargo build --release -p dxmesh-node >/dev/null
python3 -c 'import duckdb' 2>/dev/null || pip install --quiet duckdb
rm -rf "$W" && mkdir -p "$W"
REF=$(date -u +%F)
echo "== synth $N residents"
/usr/bin/time -f "synth: %e s, peak %M KiB" target/release/dxmesh synth --residents "$N" --out "$W/province" --ref-date "$REF" >/dev/null
echo "== dxmesh cycle"
start=$(date +%s.%N)
target/release/dxmesh demo --input "$W/province" --out "$W/demo" --ref-date "$REF" --residents "$N" | tee "$W/demo.log"
end=$(date +%s.%N)
audit=$(grep -E "audit bundle, verifying" "$W/demo.log" | sed -E 's/.*done in ([0-9.]+)s/\1/')
check=$(grep -E "checking the results" "$W/demo.log" | sed -E 's/.*done in ([0-9.]+)s/\1/')
cycle=$(python3 -c "print($end - $start - $audit - $check)")
echo "== duckdb"
duck=$(python3 tests/bench/duckdb_uninsured.py "$W/province" "$REF" 44 "$W/duckdb_uninsured.csv" | tee /dev/stderr | sed -E 's/DUCKDB: ([0-9.]+)s.*/\1/')
echo "== results"
python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
s = json.load(open(f"{w}/demo/summary.json"))
records = sum(v["records_read"] for v in s["inputs"].values())
p = s["timing_secs"]["pass"]
print(f"PASS: {records} input records ({s['distinct_tokens_merged']} distinct tokens) merged in {p:.2f}s = {records/p/1e6:.1f} M tokens/s (target >= 20)")
PY
grep -h "peak memory per node" "$W/demo.log" || true
dx_n=$(tail -n +2 "$W/demo/uninsured.csv" | cut -d, -f1 | sort -u | wc -l)
dd_n=$(tail -n +2 "$W/duckdb_uninsured.csv" | cut -d, -f1 | sort -u | wc -l)
printf 'CYCLE: dxmesh %.1fs (audit export+verify %.1fs not included), DuckDB %.1fs, ratio %.2fx (goal >= 3x); uninsured dxmesh %s vs DuckDB %s\n' "$cycle" "$audit" "$duck" "$(python3 -c "print($duck / $cycle)")" "$dx_n" "$dd_n"
