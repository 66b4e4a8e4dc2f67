#!/usr/bin/env bash
# local-mesh.sh: the steps of `dxmesh demo`, by hand, on one machine.
#
# Seven node processes (public security, civil affairs, health, the disabled
# persons' federation, HR/social security, the provincial comparator, the
# ministry) on fixed loopback ports 7401-7407, a synthetic province, the
# agreements of deploy/agreements/, one comparison with deploy/jobs.toml.
# Every step is a visible `dxmesh` command, printed as it runs ("$ dxmesh ...").
# Read it as a walk-through of what each department's operator does.
#
# Usage (from anywhere; paths are relative to the repository root):
#
#   deploy/local-mesh.sh                                  # builds target/release/dxmesh first
#   DXMESH=target/debug/dxmesh RESIDENTS=5000 deploy/local-mesh.sh
#
# Environment:
#   DXMESH     the dxmesh binary; if unset, `cargo build --release` builds
#              target/release/dxmesh
#   RESIDENTS  residents in the synthetic province (default 20000)
#   OUT        working directory (default target/local-mesh; recreated on each run,
#              and only if it was made by this script)
#
# Needs bash, GNU coreutils (date -d) and free TCP ports 127.0.0.1:7401-7407.
# Every daemon it starts is stopped when it ends, fails or is interrupted
# (PIDs in $OUT/daemons.pid).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

RESIDENTS=${RESIDENTS:-20000}
OUT=${OUT:-target/local-mesh}

# The seven nodes, in start order: the comparator first (everyone else
# bootstraps from it), then the providers, then the ministry.
NODES=(comparator public_security civil_affairs health disabled_federation hr ministry)
declare -A PORT=(
  [public_security]=7401 [civil_affairs]=7402 [health]=7403
  [disabled_federation]=7404 [hr]=7405 [comparator]=7406 [ministry]=7407
)
declare -A ROLE=(
  [public_security]=provider [civil_affairs]=provider [health]=provider
  [disabled_federation]=provider [hr]=provider [comparator]=comparator [ministry]=ministry
)
# What each department imports: "dataset export-file agreement-template".
declare -A DATA=(
  [public_security]="registry public_security/registry.csv registry.toml"
  [civil_affairs]="deaths civil_affairs/deaths.csv deaths_civil_affairs.toml"
  [health]="deaths health/deaths.csv deaths_health.toml"
  [disabled_federation]="register disabled_federation/register.csv disability.toml"
  [hr]="insured hr/insured.csv insured.toml"
  [ministry]="national ministry/national.csv national.toml"
)
PROVIDERS=(public_security civil_affairs health disabled_federation hr)

step() { printf '\n== %s\n' "$*"; }
# Runs dxmesh, showing the command first. CLI logs at warn unless RUST_LOG says otherwise.
dx() {
  printf '$ dxmesh %s\n' "$*" >&2
  RUST_LOG=${RUST_LOG:-warn} "$DXMESH" "$@"
}
# wait_for SECONDS WHAT COMMAND...: retries COMMAND (quietly) until it succeeds.
wait_for() {
  local secs=$1 what=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start >= secs )); then
      echo "timed out after ${secs}s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# --- Build -------------------------------------------------------------
if [[ -z ${DXMESH:-} ]]; then
  step "building dxmesh (release)"
  cargo build --release -p dxmesh-node
  DXMESH=target/release/dxmesh
fi
DXMESH=$(realpath "$DXMESH")
[[ -x $DXMESH ]] || { echo "$DXMESH is not an executable" >&2; exit 1; }

# --- working directory ----------------------------------------------------
if [[ -e $OUT ]]; then
  if [[ -e $OUT/.local-mesh ]]; then
    rm -rf -- "$OUT"
  elif [[ -n $(ls -A -- "$OUT") ]]; then
    echo "$OUT exists and was not made by local-mesh.sh; set OUT to another directory" >&2
    exit 1
  fi
fi
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
touch "$OUT/.local-mesh"
cd "$OUT"
PIDFILE=$OUT/daemons.pid
: >"$PIDFILE"

# Stops every daemon this script started (SIGTERM, then SIGKILL after 10 s).
stopped=0
stop_daemons() {
  (( stopped )) && return 0
  stopped=1
  [[ -s $PIDFILE ]] || return 0
  local pid pids=()
  while read -r _ pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done <"$PIDFILE"
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "daemon $pid did not stop in 10 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  echo "stopped ${#pids[@]} node processes"
}
trap stop_daemons EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# The cycle's dates: today (UTC) is the epoch anchor and reference date.
TODAY=$(date -u +%F)
UNTIL=$(date -u -d "$TODAY +1 year" +%F)

# --- A synthetic province ------------------------------------------------
step "1. generating a province of $RESIDENTS residents (department exports + expected results)"
# Writes input/<department>/*.csv and input/expected/*.csv (the right answers).
dx synth --residents "$RESIDENTS" --out input --ref-date "$TODAY" >synth.txt
head -n 1 synth.txt

# --- Trust anchor, nodes, roster ---------------------------------------
step "2. trust anchor key (kept offline in a real province)"
dx keygen --out anchor.key >anchor.txt
# Its public key, which every node is given at init.
sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p' anchor.txt >anchor.pub.pem
grep peer_id anchor.txt

step "3. one node directory per department (identity, config.toml, anchor key)"
mkdir -p nodes
declare -A PEER
for n in "${NODES[@]}"; do
  boot=()
  if [[ $n != comparator ]]; then
    # Everyone bootstraps from the comparator; peer exchange finds the rest.
    boot=(--bootstrap "/ip4/127.0.0.1/tcp/${PORT[comparator]}/p2p/${PEER[comparator]}")
  fi
  # Each node's operator console on the mesh port + 1000 (8401...).
  dx init --dir "nodes/$n" --department "$n" --role "${ROLE[$n]}" --anchor anchor.pub.pem \
    --listen "/ip4/127.0.0.1/tcp/${PORT[$n]}" "${boot[@]}" \
    --console "127.0.0.1:$((PORT[$n] + 1000))" >"nodes/$n.init.txt"
  PEER[$n]=$(sed -n 's/^peer_id: //p' "nodes/$n.init.txt")
  echo "   $n: ${PEER[$n]} on 127.0.0.1:${PORT[$n]}, console https://127.0.0.1:$((PORT[$n] + 1000))/"
done

step "4. config.toml edits: custodian of the 'registration' key group, manual publish/pull"
for n in "${NODES[@]}"; do
  cfg=nodes/$n/config.toml
  # This walk-through publishes and pulls by hand (dxmesh publish / compare),
  # so the daemons do not do it on their own; peers are exchanged every second.
  sed -i -e 's/^auto_publish = true/auto_publish = false/' \
         -e 's/^auto_pull = true/auto_pull = false/' \
         -e 's/^peer_exchange_secs = 5/peer_exchange_secs = 1/' "$cfg"
  if [[ ${ROLE[$n]} == provider ]]; then
    # Public security creates and keeps the group key; the other providers
    # name it and ask it for the key when they first publish.
    if [[ $n == public_security ]]; then custodian=self; else custodian=${PEER[public_security]}; fi
    sed -i "s/^\[key_custodians\]\$/[key_custodians]\nregistration = \"$custodian\"/" "$cfg"
    grep -H '^registration' "$cfg"
  fi
done

step "5. roster version 1: the trust anchor admits the seven nodes"
dx roster new --mesh local-province --out roster.toml
for n in "${NODES[@]}"; do
  dx roster add-member roster.toml --peer-id "${PEER[$n]}" --department "$n" \
    --role "${ROLE[$n]}" --address "/ip4/127.0.0.1/tcp/${PORT[$n]}"
done
dx roster sign roster.toml --anchor-key anchor.key --out roster-v1
dx roster verify roster-v1 --anchor anchor.pub.pem
for n in "${NODES[@]}"; do
  dx roster install --dir "nodes/$n" roster-v1
done

# --- The mesh ------------------------------------------------------------
step "6. starting the seven daemons (logs in nodes/<name>/node.log)"
for n in "${NODES[@]}"; do
  printf '$ dxmesh run --dir nodes/%s &\n' "$n"
  RUST_LOG=info "$DXMESH" run --dir "nodes/$n" >"nodes/$n/node.log" 2>&1 </dev/null &
  echo "$n $!" >>"$PIDFILE"
  pid=$!
  start=$SECONDS
  until "$DXMESH" status --dir "nodes/$n" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$n exited at start:" >&2
      tail -n 20 "nodes/$n/node.log" >&2
      exit 1
    fi
    (( SECONDS - start < 30 )) || { echo "$n did not start in 30 s" >&2; exit 1; }
    sleep 0.1
  done
done
sees_all() { "$DXMESH" peers --dir "nodes/$1" | head -n 1 | grep -q '(6)'; }
for n in "${NODES[@]}"; do
  wait_for 60 "$n to see the six other members" sees_all "$n"
done
dx status --dir nodes/comparator | sed -n '1,4p;/connected peers/,/public key/p' | sed '$d'

# --- Imports -------------------------------------------------------------
step "7. each department imports its own export"
for n in "${PROVIDERS[@]}" ministry; do
  read -r dataset file _ <<<"${DATA[$n]}"
  dx dataset import --dir "nodes/$n" --dataset "$dataset" --file "input/$file" \
    | grep -E '^dataset|rows (read|kept|quarantined)'
done

# --- Agreements ----------------------------------------------------------
step "8. sharing agreements: the comparator proposes, each department accepts"
# Fill the templates: valid from today for a year, one 30-day epoch from
# today with a 30-day pull window, disclosure quota of 1,000,000 records.
mkdir -p agreements
# lists_thread NODE THREAD [STATUS]: NODE's agreement list shows THREAD (with STATUS).
lists_thread() {
  "$DXMESH" agreement list --dir "nodes/$1" | grep "^$2" | grep -q -- "${3:-}"
}
for n in "${PROVIDERS[@]}" ministry; do
  read -r _ _ template <<<"${DATA[$n]}"
  sed -e "s/{{FROM}}/$TODAY/g" -e "s/{{UNTIL}}/$UNTIL/g" -e "s/{{ANCHOR}}/$TODAY/g" \
      -e 's/{{PERIOD}}/P30D/g' -e 's/{{WINDOW}}/P30D/g' -e 's/{{QUOTA}}/1000000/g' \
      "$REPO/deploy/agreements/$template" >"agreements/$template"
  if grep -v '^ *#' "agreements/$template" | grep -q '{{'; then
    echo "agreements/$template: unfilled placeholder" >&2; exit 1
  fi
  dx agreement propose --dir nodes/comparator --to "${PEER[$n]}" \
    --terms "agreements/$template" >"agreements/$template.proposed.txt"
  thread=$(sed -n 's/^thread: *//p' "agreements/$template.proposed.txt")
  echo "thread:    $thread"
  [[ -n $thread ]] || { echo "no thread id from the proposal to $n" >&2; exit 1; }
  id=${thread:0:16}
  # The proposal travels to the department; its operator reviews and accepts.
  wait_for 30 "the proposal to reach $n" lists_thread "$n" "$id"
  dx agreement accept --dir "nodes/$n" "$id" | grep -E '^(agreement|status|dataset):'
  # ... and the acceptance travels back to the comparator.
  wait_for 30 "the comparator to see $n's acceptance" lists_thread comparator "$id" active
done
dx agreement list --dir nodes/comparator

# --- Publish ---------------------------------------------------------------
step "9. the five departments publish their signed, tokenised feeds"
# The first publish of a provider other than the custodian fetches the
# registration group key from public security, so it may need a retry.
for n in "${PROVIDERS[@]}"; do
  printf '$ dxmesh publish --dir nodes/%s\n' "$n"
  start=$SECONDS
  until "$DXMESH" publish --dir "nodes/$n" >"nodes/$n.publish.txt" 2>&1; do
    if (( SECONDS - start >= 60 )); then cat "nodes/$n.publish.txt" >&2; exit 1; fi
    sleep 1
  done
  grep '^published' "nodes/$n.publish.txt"
done

# --- Compare -----------------------------------------------------------------
step "10. the comparator pulls, compares, asks the ministry and gets disclosures"
dx compare --dir nodes/comparator --jobs "$REPO/deploy/jobs.toml" --out results

# --- Check -------------------------------------------------------------------
step "11. checking the results against the generator's expected lists"
differ=()
for f in uninsured.csv deceased_insured.csv disabled_uninsured.csv name_conflicts.csv coverage.csv; do
  if [[ $(head -n 1 "input/expected/$f") != $(head -n 1 "results/$f") ]] \
     || ! cmp -s <(tail -n +2 "input/expected/$f" | LC_ALL=C sort) \
                 <(tail -n +2 "results/$f" | LC_ALL=C sort); then
    differ+=("$f")
  fi
done
if (( ${#differ[@]} )); then
  echo "RESULTS DIFFER from input/expected/: ${differ[*]}"
  exit 1
fi
echo "results match input/expected/ exactly"

step "12. the results as files for analysts (CSV with a byte-order mark, results.xlsx)"
dx results export --from results --out analyst --xlsx
echo "results: $OUT/results   for analysts: $OUT/analyst   nodes: $OUT/nodes"
# The EXIT trap stops the daemons.
