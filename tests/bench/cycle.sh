#!/usr/bin/env bash
# Whole-cycle benchmark (issue 6), in one run on this machine:
#  1. generate a province (`dxmesh synth`, not timed in the comparison);
#  2. dxmesh: `dxmesh demo --input` on it — seven node processes; import and
#     publish at five providers, pulls, the comparison pass, disclosure,
#     the ministry query (the audit export/verify step is reported apart);
#  3. DuckDB: load the same CSVs and compute the same `uninsured` list with
#     ID normalisation in SQL (tests/bench/duckdb_uninsured.py);
# and prints both times and the ratio (all seven nodes on this machine),
# the deployment's critical path and its ratio (each department on its own
# machine), the comparison pass's merge rate and each node's peak memory.
#
# Usage: tests/bench/cycle.sh [RESIDENTS]   (default 10000000)
# DXMESH_BENCH_MEMORY_MIB: every node's `[limits] memory_mib` (default 4096).
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
target/release/dxmesh demo --input "$W/province" --out "$W/demo" --ref-date "$REF" --residents "$N" --memory-mib "${DXMESH_BENCH_MEMORY_MIB:-4096}" | tee "$W/demo.log"
end=$(date +%s.%N)
audit=$(grep -E "audit bundle, verifying" "$W/demo.log" | sed -E 's/.*done in ([0-9.]+)s/\1/')
check=$(grep -E "checking the results" "$W/demo.log" | sed -E 's/.*done in ([0-9.]+)s/\1/')
cycle=$(python3 -c "print($end - $start - $audit - $check)")
echo "== duckdb"
# (Not `tee /dev/stderr`: reopening a redirected stderr truncates its file.)
duck_line=$(python3 tests/bench/duckdb_uninsured.py "$W/province" "$REF" 44 "$W/duckdb_uninsured.csv")
echo "$duck_line"
duck=$(echo "$duck_line" | sed -E 's/DUCKDB: ([0-9.]+)s.*/\1/')
echo "== results"
python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
s = json.load(open(f"{w}/demo/summary.json"))
records = sum(v["records_read"] for v in s["inputs"].values())
p = s["timing_secs"]["pass"]
print(f"PASS: {records} input records ({s['distinct_tokens_merged']} distinct tokens) merged in {p:.2f}s = {records/p/1e6:.1f} M tokens/s (target >= 20)")
PY
grep -h "peak memory per" "$W/demo.log" || true
echo "disk: $(du -sh "$W/province" | cut -f1) of exports, $(du -sh "$W/demo" | cut -f1) of node data"
dx_n=$(tail -n +2 "$W/demo/uninsured.csv" | cut -d, -f1 | sort -u | wc -l)
dd_n=$(tail -n +2 "$W/duckdb_uninsured.csv" | cut -d, -f1 | sort -u | wc -l)
printf 'CYCLE: dxmesh %.1fs (audit export+verify %.1fs not included), DuckDB %.1fs, ratio %.2fx (goal >= 1.0x, moonshot 1.5x); uninsured dxmesh %s vs DuckDB %s\n' "$cycle" "$audit" "$duck" "$(python3 -c "print($duck / $cycle)")" "$dx_n" "$dd_n"
# The deployment's critical path: each department on its own machine, so
# the slowest provider's import and publish (each timed alone: the demo
# runs them one after another) then the comparator's cycle (pulls, passes,
# ministry queries, disclosures: `total` in summary.json).
python3 - "$W" "$duck" <<'PY'
import json, sys
w, duck = sys.argv[1], float(sys.argv[2])
st = json.load(open(f"{w}/demo/stage_times.json"))
t = json.load(open(f"{w}/demo/summary.json"))["timing_secs"]
per = {n: st["import"].get(n, 0) + st["publish"].get(n, 0) for n in st["publish"]}
slowest = max(per, key=per.get)
crit = per[slowest] + t["total"]
stages = ", ".join(f"{n} {st['import'].get(n, 0):.1f}+{st['publish'][n]:.1f}s" for n in sorted(per))
print(f"PROVIDERS (import+publish, each alone): {stages}")
print(f"COMPARATOR: pull {t['pull']:.1f}s, pass 1 {t['pass_1']:.1f}s, ministry {t['ministry'] - t['pass_1']:.1f}s, pass {t['pass']:.1f}s, disclose and write {t['disclose_and_write']:.1f}s, total {t['total']:.1f}s")
print(f"CRITICAL PATH: {slowest} {per[slowest]:.1f}s + comparator {t['total']:.1f}s = {crit:.1f}s, DuckDB {duck:.1f}s, ratio {duck / crit:.2f}x (goal >= 3x)")
PY
