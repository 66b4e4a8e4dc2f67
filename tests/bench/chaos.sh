#!/usr/bin/env bash
# chaos.sh TRIALS SEED: a node killed at a random moment loses nothing.
#
# A synthetic province (RESIDENTS, default 50,000) on a local mesh of seven
# node processes (loopback ports 7501-7507, consoles off). The mesh is set
# up once (identities, roster, imports, the six sharing agreements and the
# upload agreement) and stopped; every trial starts from a copy of it and
# runs one cycle: each department imports its export again, the providers
# publish, the comparator compares (pulls, the comparison passes, the
# ministry query, the disclosures), then uploads its verified findings
# (import, publish, the ministry's pull).
#
# Trial 0 runs clean and is the reference. In every other trial one node is
# sent SIGKILL at a random moment of one stage, chosen from SEED:
#   import      a department's `dxmesh dataset import` process
#   publish     a provider's daemon, during `dxmesh publish`
#   pull        the comparator's daemon, while it pulls
#   comparison  the comparator's daemon, during its comparison passes
#   disclosure  a provider's daemon, while the comparator asks for records
#   upload      the comparator's or the ministry's daemon, during the upload
# (the moment is drawn within that stage's duration in trial 0). The killed
# node is restarted, the interrupted command is run again, and the cycle is
# finished. A trial passes if its results (every result file, coverage,
# verified findings, the records the ministry pulled) equal trial 0's, every
# node's audit log exports and verifies, no dataset is left without a
# complete current generation, and no temporary file is left behind.
#
# Then, as root (it mounts a small tmpfs; DISKFULL=0 skips it): an import
# and a pull into a disk that fills up stop with a clear error, leave
# nothing half-written, and succeed once there is room (the pull resumes).
#
# Prints one line per trial, then `N passed, N failed` (each failure with
# its stage and node); exits non-zero if any failed.
#
# Usage (from anywhere):
#   tests/bench/chaos.sh 100 42              # builds target/release/dxmesh first
#   DXMESH=target/debug/dxmesh RESIDENTS=5000 tests/bench/chaos.sh 5 1
#
# Environment: DXMESH (the binary; default: build release), RESIDENTS,
# OUT (working directory, default target/chaos; recreated).
set -euo pipefail

TRIALS=${1:?usage: chaos.sh TRIALS SEED}
SEED=${2:?usage: chaos.sh TRIALS SEED}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
RESIDENTS=${RESIDENTS:-50000}
OUT=${OUT:-target/chaos}
if [[ -z ${DXMESH:-} ]]; then
  cargo build --release -p dxmesh-node >&2
  DXMESH=target/release/dxmesh
fi
DXMESH=$(realpath "$DXMESH")
export RUST_LOG=${RUST_LOG:-warn}

NODES=(comparator public_security civil_affairs health disabled_federation hr ministry)
PROVIDERS=(public_security civil_affairs health disabled_federation hr)
declare -A PORT=(
  [public_security]=7501 [civil_affairs]=7502 [health]=7503
  [disabled_federation]=7504 [hr]=7505 [comparator]=7506 [ministry]=7507
)
declare -A ROLE=(
  [public_security]=provider [civil_affairs]=provider [health]=provider
  [disabled_federation]=provider [hr]=provider [comparator]=comparator [ministry]=ministry
)
declare -A DATA=(
  [public_security]="registry public_security/registry.csv registry.toml"
  [civil_affairs]="deaths civil_affairs/deaths.csv deaths_civil_affairs.toml"
  [health]="deaths health/deaths.csv deaths_health.toml"
  [disabled_federation]="register disabled_federation/register.csv disability.toml"
  [hr]="insured hr/insured.csv insured.toml"
  [ministry]="national ministry/national.csv national.toml"
)
declare -A PEER DAEMON AGREEMENT

rm -rf -- "$OUT"
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
cd "$OUT"
RANDOM=$SEED

log() { printf '%s\n' "$*" >&2; }
dx() { "$DXMESH" "$@"; }
wait_for() { # SECONDS COMMAND...: retries COMMAND until it succeeds
  local secs=$1 start=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - start < secs )) || return 1
    sleep 0.2
  done
}
now_ms() { date +%s%3N; }

# --- daemons of the mesh in directory $1 ------------------------------------
start_node() { # MESH NODE
  local m=$1 n=$2
  "$DXMESH" run --dir "$m/nodes/$n" >>"$m/nodes/$n.log" 2>&1 </dev/null &
  DAEMON[$n]=$!
  disown "${DAEMON[$n]}" # no "Killed" job reports: the trials kill on purpose
  wait_for 30 "$DXMESH" status --dir "$m/nodes/$n" || { log "$n did not start"; return 1; }
}
sees_all() { "$DXMESH" peers --dir "$1" | head -n 1 | grep -q '(6)'; }
connected() { # MESH: every node sees the six others
  local n
  for n in "${NODES[@]}"; do
    wait_for 60 sees_all "$1/nodes/$n" || { log "$n does not see the mesh"; return 1; }
  done
}
start_mesh() {
  local n
  for n in "${NODES[@]}"; do start_node "$1" "$n"; done
  connected "$1"
}
stop_mesh() {
  local n pid
  for n in "${!DAEMON[@]}"; do kill -TERM "${DAEMON[$n]}" 2>/dev/null || true; done
  for n in "${!DAEMON[@]}"; do
    pid=${DAEMON[$n]}
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done
  DAEMON=()
}
trap stop_mesh EXIT

# --- the mesh, set up once ---------------------------------------------------
TODAY=$(date -u +%F)
UNTIL=$(date -u -d "$TODAY +1 year" +%F)
log "setting up: a province of $RESIDENTS residents, seven nodes, agreements"
dx synth --residents "$RESIDENTS" --out input --ref-date "$TODAY" >/dev/null
BASE=$OUT/base
mkdir -p "$BASE/nodes" "$BASE/agreements"
dx keygen --out "$BASE/anchor.key" >"$BASE/anchor.txt"
sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p' "$BASE/anchor.txt" >"$BASE/anchor.pub.pem"
dx roster new --mesh chaos --out "$BASE/roster.toml" >/dev/null
for n in "${NODES[@]}"; do
  boot=()
  [[ $n == comparator ]] || boot=(--bootstrap "/ip4/127.0.0.1/tcp/${PORT[comparator]}/p2p/${PEER[comparator]}")
  dx init --dir "$BASE/nodes/$n" --department "$n" --role "${ROLE[$n]}" \
    --anchor "$BASE/anchor.pub.pem" --listen "/ip4/127.0.0.1/tcp/${PORT[$n]}" \
    "${boot[@]}" --console none >"$BASE/nodes/$n.init.txt"
  PEER[$n]=$(sed -n 's/^peer_id: //p' "$BASE/nodes/$n.init.txt")
  cfg=$BASE/nodes/$n/config.toml
  sed -i -e 's/^auto_publish = true/auto_publish = false/' -e 's/^auto_pull = true/auto_pull = false/' \
    -e 's/^peer_exchange_secs = 5/peer_exchange_secs = 1/' "$cfg"
  if [[ ${ROLE[$n]} == provider ]]; then
    if [[ $n == public_security ]]; then custodian=self; else custodian=${PEER[public_security]}; fi
    sed -i "s/^\[key_custodians\]\$/[key_custodians]\nregistration = \"$custodian\"/" "$cfg"
  fi
  dx roster add-member "$BASE/roster.toml" --peer-id "${PEER[$n]}" --department "$n" \
    --role "${ROLE[$n]}" --address "/ip4/127.0.0.1/tcp/${PORT[$n]}" >/dev/null
done
dx roster sign "$BASE/roster.toml" --anchor-key "$BASE/anchor.key" --out "$BASE/roster-v1" >/dev/null
for n in "${NODES[@]}"; do dx roster install --dir "$BASE/nodes/$n" "$BASE/roster-v1" >/dev/null; done
start_mesh "$BASE"
for n in "${PROVIDERS[@]}" ministry; do
  read -r dataset file _ <<<"${DATA[$n]}"
  dx dataset import --dir "$BASE/nodes/$n" --dataset "$dataset" --file "input/$file" >/dev/null
done
printf 'id_number,finding\n' >"$BASE/verified_registrations.csv"
dx dataset import --dir "$BASE/nodes/comparator" --dataset verified_registrations \
  --file "$BASE/verified_registrations.csv" >/dev/null
lists_thread() { "$DXMESH" agreement list --dir "$1" | grep "^$2" | grep -q -- "${3:-}"; }
agree() { # PROPOSER ACCEPTOR TERMS-FILE: the agreement's thread id
  local out thread
  out=$(dx agreement propose --dir "$BASE/nodes/$1" --to "${PEER[$2]}" --terms "$3")
  thread=$(sed -n 's/^thread: *//p' <<<"$out")
  wait_for 30 lists_thread "$BASE/nodes/$2" "${thread:0:16}"
  dx agreement accept --dir "$BASE/nodes/$2" "${thread:0:16}" >/dev/null
  wait_for 30 lists_thread "$BASE/nodes/$1" "${thread:0:16}" active
  printf '%s' "${thread:0:16}"
}
fill() {
  sed -e "s/{{FROM}}/$TODAY/g" -e "s/{{UNTIL}}/$UNTIL/g" -e "s/{{ANCHOR}}/$TODAY/g" \
    -e 's/{{PERIOD}}/P30D/g' -e 's/{{WINDOW}}/P30D/g' -e 's/{{QUOTA}}/1000000/g' \
    -e "s/{{PROVIDER}}/${PEER[comparator]}/g" -e "s/{{CONSUMER}}/${PEER[ministry]}/g" "$1"
}
for n in "${PROVIDERS[@]}" ministry; do
  read -r _ _ template <<<"${DATA[$n]}"
  fill "$REPO/deploy/agreements/$template" >"$BASE/agreements/$template"
  AGREEMENT[$n]=$(agree comparator "$n" "$BASE/agreements/$template")
done
fill "$REPO/deploy/agreements/upload.toml" >"$BASE/agreements/upload.toml"
UPLOAD=$(agree comparator ministry "$BASE/agreements/upload.toml")
stop_mesh

# --- one trial ----------------------------------------------------------------
# Stage durations (ms) measured in trial 0, for drawing the kill moments.
declare -A DUR
RECORD=1
# kill_later VICTIM DELAY_MS PID_OF_COMMAND: kills VICTIM (a daemon name, or
# "cli" for the command itself) DELAY_MS from now, if the command still runs.
KILLED=""
kill_later() {
  local victim=$1 delay=$2 cmd_pid=$3 pid
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  if [[ $victim == cli ]]; then pid=$cmd_pid; else pid=${DAEMON[$victim]}; fi
  if kill -0 "$pid" 2>/dev/null && kill -0 "$cmd_pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null && KILLED=yes
  fi
}
# run_stage MESH STAGE COMMAND...: runs COMMAND (a shell function); in the
# chosen trial stage, kills the victim at the chosen moment, restarts it and
# runs COMMAND again until it succeeds (3 tries).
run_stage() {
  local m=$1 stage=$2 start pid tries=0
  shift 2
  start=$(now_ms)
  if [[ $stage == "$K_STAGE" && -n $K_VICTIM ]]; then
    local rc=0
    "$@" >>"$m/commands.log" 2>&1 &
    pid=$!
    kill_later "$K_VICTIM" "$K_DELAY" "$pid"
    { wait "$pid"; } 2>/dev/null || rc=$?
    if [[ -n $KILLED && $K_VICTIM != cli ]]; then
      while kill -0 "${DAEMON[$K_VICTIM]}" 2>/dev/null; do sleep 0.05; done
      start_node "$m" "$K_VICTIM" || return 1
      connected "$m" || return 1
    fi
    (( rc != 0 )) || return 0
    until "$@" >>"$m/commands.log" 2>&1; do
      (( ++tries < 3 )) || return 1
      sleep 1
    done
    return 0
  fi
  "$@" >>"$m/commands.log" 2>&1 || return 1
  if (( RECORD )); then DUR[$stage]=$(( ${DUR[$stage]:-0} + $(now_ms) - start )); fi
}

imports() {
  local n dataset file
  for n in "${PROVIDERS[@]}" ministry; do
    read -r dataset file _ <<<"${DATA[$n]}"
    dx dataset import --dir "$M/nodes/$n" --dataset "$dataset" --file "$OUT/input/$file" || return 1
  done
}
publish_all() {
  local n
  for n in "${PROVIDERS[@]}"; do
    wait_for 60 "$DXMESH" publish --dir "$M/nodes/$n" || return 1
  done
}
compare() { dx compare --dir "$M/nodes/comparator" --jobs "$REPO/deploy/jobs.toml" --out "$M/results"; }
upload() {
  dx dataset import --dir "$M/nodes/comparator" --dataset verified_registrations \
    --file "$M/results/verified_registrations.csv" &&
    dx publish --dir "$M/nodes/comparator" --agreement "$UPLOAD" &&
    dx pull --dir "$M/nodes/ministry" --agreement "$UPLOAD" >"$M/uploaded.txt"
}

# check MESH: the trial's verdict ("" if it passed, else why).
check() {
  local m=$1 f why=() n
  for f in uninsured.csv deceased_insured.csv disabled_uninsured.csv name_conflicts.csv \
    coverage.csv verified_registrations.csv; do
    if ! cmp -s <(LC_ALL=C sort "$OUT/trial-0/results/$f") <(LC_ALL=C sort "$m/results/$f" 2>/dev/null); then
      why+=("$f differs")
    fi
  done
  [[ $(grep -o '[0-9]* records' "$m/uploaded.txt" 2>/dev/null) == \
     $(grep -o '[0-9]* records' "$OUT/trial-0/uploaded.txt") ]] || why+=("upload differs")
  local bundles=()
  for n in "${NODES[@]}"; do
    dx audit export --dir "$m/nodes/$n" --out "$m/audit/$n" >/dev/null 2>&1 || why+=("$n audit export")
    [[ $n == comparator ]] || bundles+=(--bundle "$m/audit/$n")
  done
  dx audit verify "$m/audit/comparator" --anchor "$BASE/anchor.pub.pem" "${bundles[@]}" >"$m/audit.txt" 2>&1 || why+=("audit verify")
  for f in "$m"/nodes/*/data/datasets/*; do
    [[ -d $f ]] || continue
    local cur
    cur=$(cat "$f/CURRENT" 2>/dev/null) || { why+=("${f#"$m"/nodes/} has no CURRENT"); continue; }
    [[ -s $f/gen-$cur/report.json && -s $f/gen-$cur/records.bin ]] || why+=("${f#"$m"/nodes/} gen-$cur incomplete")
  done
  local tmp
  tmp=$(find "$m/nodes" -name '.dxmesh-tmp-*' -o -name '.tmp-*' -o -name '.national-*' | head -n 3)
  [[ -z $tmp ]] || why+=("temporary files left: ${tmp//$'\n'/ }")
  (IFS='; '; printf '%s' "${why[*]}")
}

STAGES=(import publish pull comparison disclosure upload)
passed=0
failed=0
failures=()
for ((t = 0; t <= TRIALS; t++)); do
  M=$OUT/trial-$t
  mkdir -p "$M"
  cp -a "$BASE/nodes" "$M/nodes"
  K_STAGE="" K_VICTIM="" K_DELAY=0 KILLED=""
  if (( t > 0 )); then
    K_STAGE=${STAGES[RANDOM % ${#STAGES[@]}]}
    case $K_STAGE in
      import) K_VICTIM=cli ;;
      publish) K_VICTIM=${PROVIDERS[RANDOM % ${#PROVIDERS[@]}]} ;;
      pull | comparison) K_VICTIM=comparator ;;
      disclosure) K_VICTIM=${PROVIDERS[RANDOM % ${#PROVIDERS[@]}]} ;;
      upload) if (( RANDOM % 2 )); then K_VICTIM=comparator; else K_VICTIM=ministry; fi ;;
    esac
    # Within the stage: the compare command's pull, its passes, then the
    # disclosures make up its time (summary.json of trial 0).
    total=${DUR[$K_STAGE]:-1000}
    case $K_STAGE in
      pull) K_DELAY=$((RANDOM % (PULL_MS + 1))) ;;
      comparison) K_DELAY=$((PULL_MS + RANDOM % (PASS_MS + 1))) ;;
      disclosure) K_DELAY=$((PULL_MS + PASS_MS + RANDOM % (DISCLOSE_MS + 1))) ;;
      # Within 80% of it: the stage runs a little faster or slower each time.
      *) K_DELAY=$(((RANDOM * 32768 + RANDOM) % (total * 8 / 10 + 1))) ;;
    esac
  fi
  start_mesh "$M"
  verdict=""
  run_stage "$M" import imports || verdict="import failed"
  [[ -n $verdict ]] || run_stage "$M" publish publish_all || verdict="publish failed"
  case $K_STAGE in pull | comparison | disclosure) cmp_stage=$K_STAGE ;; *) cmp_stage=compare ;; esac
  [[ -n $verdict ]] || run_stage "$M" "$cmp_stage" compare || verdict="compare failed"
  [[ -n $verdict ]] || run_stage "$M" upload upload || verdict="upload failed"
  if (( t > 0 )) && [[ -z $verdict ]]; then verdict=$(check "$M"); fi
  stop_mesh
  if (( t == 0 )); then
    [[ -z $verdict ]] || { log "the clean run failed: $verdict (see $M/commands.log)"; exit 1; }
    RECORD=0
    read -r PULL_MS PASS_MS DISCLOSE_MS < <(python3 - "$M/results/summary.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))["timing_secs"]
ms = lambda *k: int(1000 * sum(t.get(x, 0) for x in k))
print(ms("pull"), ms("pass_1", "ministry", "pass"), ms("disclose_and_write"))
EOF
)
    echo "trial 0: clean run (import ${DUR[import]} ms, publish ${DUR[publish]} ms, compare ${DUR[compare]} ms, upload ${DUR[upload]} ms)"
    continue
  fi
  what="$K_STAGE, $K_VICTIM killed at +${K_DELAY} ms$([[ -n $KILLED ]] || echo ' (it had finished)')"
  if [[ -z $verdict ]]; then
    passed=$((passed + 1))
    echo "trial $t: passed ($what)"
    rm -rf -- "$M"
  else
    failed=$((failed + 1))
    failures+=("trial $t ($what): $verdict")
    echo "trial $t: FAILED ($what): $verdict (kept in $M)"
  fi
done
# --- disk full ------------------------------------------------------------------
# An import and a pull into a directory that fills up (a tmpfs mounted over
# the dataset store and over the pulled feeds, just too small): each must
# stop with an error that says so and names the file, leave nothing
# half-written (the previous generation current; no pull marked complete),
# and succeed once there is room again (the pull resuming).
MOUNTS=()
unmount_all() { local d; for d in "${MOUNTS[@]}"; do umount "$d" 2>/dev/null || true; done; }
trap 'stop_mesh; unmount_all' EXIT
# full_tmpfs DIR EXTRA_KIB: DIR's contents moved onto a tmpfs of their size plus EXTRA_KIB.
full_tmpfs() {
  local dir=$1 extra=$2 used
  used=$(du -sk "$dir" | cut -f1)
  mv "$dir" "$dir.disk"
  mkdir "$dir"
  mount -t tmpfs -o "size=$((used + extra))k,mode=0700" tmpfs "$dir"
  MOUNTS+=("$dir")
  cp -a "$dir.disk/." "$dir/"
  rm -rf "$dir.disk"
}
disk_full() {
  M=$OUT/disk-full
  mkdir -p "$M"
  cp -a "$BASE/nodes" "$M/nodes"
  local why=() out ds=$M/nodes/public_security/data/datasets
  read -r dataset file _ <<<"${DATA[public_security]}"
  full_tmpfs "$ds" 64
  start_mesh "$M"
  if out=$(dx dataset import --dir "$M/nodes/public_security" --dataset "$dataset" \
    --file "$OUT/input/$file" 2>&1); then
    why+=("the import into a full disk succeeded")
  else
    grep -q "No space left on device" <<<"$out" || why+=("import error does not say the disk is full: $out")
  fi
  [[ $(cat "$ds/$dataset/CURRENT") == 1 && -s $ds/$dataset/gen-1/records.bin ]] ||
    why+=("the previous import is not current and whole")
  [[ -z $(find "$ds" -name 'gen-2' -o -name '.dxmesh-tmp-*') ]] || why+=("the failed import left files")
  mount -o remount,size=512m "$ds"
  dx dataset import --dir "$M/nodes/public_security" --dataset "$dataset" \
    --file "$OUT/input/$file" >/dev/null 2>&1 || why+=("the import failed with room again")
  wait_for 60 "$DXMESH" publish --dir "$M/nodes/public_security" || why+=("publish failed")
  local pulls=$M/nodes/comparator/data/pulls
  mkdir -p "$pulls"
  full_tmpfs "$pulls" 48
  if out=$(dx pull --dir "$M/nodes/comparator" --agreement "${AGREEMENT[public_security]}" 2>&1); then
    why+=("the pull into a full disk succeeded")
  else
    grep -q -i "no space left on device" <<<"$out" || why+=("pull error does not say the disk is full: $out")
  fi
  [[ -z $(find "$pulls" -name complete) ]] || why+=("a pull into a full disk is marked complete")
  mount -o remount,size=512m "$pulls"
  out=$(dx pull --dir "$M/nodes/comparator" --agreement "${AGREEMENT[public_security]}" 2>&1) ||
    why+=("the pull failed with room again: $out")
  [[ -n $(find "$pulls" -name complete) ]] || why+=("the resumed pull is not complete")
  stop_mesh
  unmount_all
  MOUNTS=()
  (IFS='; '; printf '%s' "${why[*]}")
}
if [[ $(id -u) == 0 && ${DISKFULL:-1} == 1 ]]; then
  verdict=$(disk_full)
  if [[ -z $verdict ]]; then
    echo "disk full: passed (import and pull stop clearly, leave nothing half-written, succeed with room again)"
  else
    failed=$((failed + 1))
    failures+=("disk full: $verdict")
    echo "disk full: FAILED: $verdict"
  fi
else
  echo "disk full: skipped (mounting a small tmpfs needs root; DISKFULL=0 skips it)"
fi

echo "$passed passed, $failed failed"
for f in "${failures[@]}"; do echo "  $f"; done
(( failed == 0 ))
