#!/usr/bin/env bash
# A year of monthly cycles (issue 28): `dxmesh demo --cycles 12` on a
# province of RESIDENTS (default 1,000,000) — seven node processes, each
# month's exports from `synth --cycle` (deaths, new pensions, moves out and
# in, 16th birthdays, corrections of faulty IDs), imported before the
# shared clock turns the epoch, published, compared against the month
# before and uploaded to the ministry — then prints per cycle the wall time
# of each step, whether every result equals that month's expected lists,
# and each node's disk and audit entries; and checks the promises: every
# cycle exact, cycle time not growing with the cycle number, disk levelling
# off under the agreements' retention (90 days, monthly periods).
#
# Usage: tests/bench/year.sh [RESIDENTS] [CYCLES]   (defaults 1000000, 12)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-1000000}"
C="${2:-12}"
W="${DXMESH_BENCH_DIR:-target/bench-year}"
cargo build --release -p dxmesh-node >/dev/null
rm -rf "$W" && mkdir -p "$W"
REF=$(date -u +%F)
target/release/dxmesh demo --residents "$N" --cycles "$C" --out "$W/demo" --ref-date "$REF" > "$W/demo.log"
python3 - "$W/demo/cycles.json" "$N" <<'PY'
import json, sys
cycles = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
nodes = list(cycles[0]["nodes"])
steps = ["synth", "import", "publish", "compare", "upload"]
print(f"YEAR: {len(cycles)} monthly cycles of a {n:,}-resident province")
print("cycle | " + " | ".join(steps) + " | cycle s | exact | " + " | ".join(f"{x} MB / audit" for x in nodes))
for c in cycles:
    st = " | ".join(f"{c['steps'][s]:.1f}" if s in c["steps"] else "-" for s in steps)
    disk = " | ".join(f"{c['nodes'][x]['disk_bytes']/1e6:.0f} / {c['nodes'][x]['audit_entries']}" for x in nodes)
    exact = {True: "yes", False: "NO", None: "-"}[c["exact"]]
    print(f"{c['cycle']} | {st} | {c['wall_secs']:.1f} | {exact} | {disk}")
later = cycles[1:]
ok = all(c["exact"] for c in cycles)
# Cycle time: the last three later cycles against the first three (steps
# after the first cycle are the same work each month; synth, the test's
# generator, replays every month since the first and is left out).
work = lambda c: sum(c["steps"][s] for s in steps[1:] if s in c["steps"])
first = sum(work(c) for c in later[:3]) / 3
last = sum(work(c) for c in later[-3:]) / 3
flat = last <= first * 1.25
# Disk: once retention erases (cycle 5 on: 90 days at 30-day periods),
# the total across nodes stays within 10 % of cycle 5's.
total = [sum(v["disk_bytes"] for v in c["nodes"].values()) for c in cycles]
settled = total[4:] if len(total) > 5 else total[-1:]
bounded = max(settled) <= min(settled) * 1.10
per_cycle = [sum(v["audit_entries"] for v in b["nodes"].values()) - sum(v["audit_entries"] for v in a["nodes"].values()) for a, b in zip(cycles, cycles[1:])]
print(f"EXACT: {'every cycle' if ok else 'NOT every cycle'}")
print(f"TIME (import, publish, compare, upload): cycles 2-4 {first:.1f}s, last three {last:.1f}s per cycle ({last / first:.2f}x; target: not growing, <= 1.25x)")
print(f"DISK: all nodes {total[0]/1e6:.0f} MB after cycle 1, {max(total)/1e6:.0f} MB at most, {total[-1]/1e6:.0f} MB after cycle {len(total)} (from cycle 5 within {max(settled)/min(settled):.2f}x; target <= 1.10x)")
print(f"AUDIT: entries added per cycle, all nodes: {per_cycle} (the log is append-only: a constant per cycle)")
sys.exit(0 if ok and flat and bounded else 1)
PY
