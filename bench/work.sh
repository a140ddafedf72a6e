#!/usr/bin/env bash
# Work-service benchmarks (issue 6): `GET /v1/tasks/mine` with 10,000 tasks in the project,
# `GET /v1/bootstrap` on a project with 1,000 context entries, 1,000 tasks and 50 active runs,
# and `POST /v1/runbooks/runs/{id}/advance` (when the build has runbooks), each as p50/p99 with
# wrk -t1 -c1 and as a ratio to the bare SQLite read baseline measured in the same run.
# SQLite always; PostgreSQL too when CANOPY_BENCH_PG is a server URL (a fresh database is
# created on it).
#
#   bash bench/work.sh
#   CANOPY_BENCH_PG=postgres://postgres@127.0.0.1:5432/test bash bench/work.sh
#
# Seeding (bench/seed_work.py, over HTTP, 8 threads) per backend, each in its own project:
#   mine:      agents bench/other-a/other-b; 10,000 tasks, 2,000 assigned to `bench` (200 of
#              them done), 3,000 to the others, mixed priorities; read with
#              `X-Minolith-Agent: bench` (default page).
#   bootstrap: 1,000 entries (50 tagged `bootstrap`, 100 `priority: high`), 1,000 tasks (200 to
#              `bench`), 50 active runs: runbook runs if `GET /v1/runbooks` answers 200, else
#              Stackmint runs of a `wait` bud (the kind used is printed and recorded). Read with
#              `X-Minolith-Agent: bench`; each call also records the session (one small write).
#   advance:   for each length in ADVANCE_STEPS ("200 20": the maximum, and a typical one), one
#              runbook of that many `action` steps and enough runs for ADVANCE_BUDGET advances;
#              wrk advances them round-robin (bench/lua/advance.lua), so no run completes inside
#              the window.
# Baseline: `canopy-bench-baseline sqlite` GET /items/500 (one SQLite PK read), wrk -t1 -c1.
# Knobs: BACKENDS ("sqlite", plus "pg" with CANOPY_BENCH_PG; BACKENDS=pg for PostgreSQL only),
# READ_DURATION (5s), SKIP_BUILD=1, ADVANCE_STEPS ("200 20"), ADVANCE_BUDGET (8000), BINARY_COMMIT
# (recorded when the binaries were built from another tree than this one, with SKIP_BUILD=1).
# Prints markdown tables; writes bench/results/work.json.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
READ_DURATION="${READ_DURATION:-5s}"
ADVANCE_STEPS="${ADVANCE_STEPS:-200 20}"
ADVANCE_BUDGET="${ADVANCE_BUDGET:-8000}"
HOST=127.0.0.1
PORT_BASE=18101
PORT_CANOPY=18103
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CANOPY="$TARGET_DIR/release/canopy"
BASELINE="$TARGET_DIR/release/canopy-bench-baseline"
RESULTS="$ROOT/bench/results"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is required (apt-get install -y wrk curl python3)" >&2; exit 1; }
done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release --locked -p canopy -p canopy-bench-baseline >&2
fi

WORK="$(mktemp -d -t canopy-wbench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "bench: $*" >&2; }
start() { local name="$1"; shift; "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" & LAST_PID=$!; PIDS+=("$LAST_PID"); }
stop() {
  local keep=() p
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}
wait_ready() {
  for _ in $(seq 1 2000); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$WORK"/*.err >&2; exit 1; }
    sleep 0.005
  done
  exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run NAME PID URL [wrk args...] : wrk -t1 -c1 for READ_DURATION.
run() {
  local name="$1" pid="$2" url="$3" t0 t1
  shift 3
  log "wrk -t1 -c1 -d$READ_DURATION $url"
  t0=$(cpu_ticks "$pid")
  wrk -t1 -c1 -d"$READ_DURATION" --latency "$@" "$url" >"$WORK/$name.wrk"
  t1=$(cpu_ticks "$pid")
  echo "$((t1 - t0))" >"$WORK/$name.cpu"
  grep -E "Requests/sec|50%|99%|Non-2xx" "$WORK/$name.wrk" >&2 || true
}

# ---- bare read baseline --------------------------------------------------------------------
start base "$BASELINE" sqlite "$PORT_BASE" "$WORK/base.db"
BASE_PID=$LAST_PID
wait_ready "http://$HOST:$PORT_BASE/items/1" "$BASE_PID"
run base_read "$BASE_PID" "http://$HOST:$PORT_BASE/items/500"
stop "$BASE_PID"

# ---- canopy, per backend -------------------------------------------------------------------
bench_backend() {
  local backend="$1" data="$WORK/canopy-$1" extra=()
  mkdir -p "$data"
  printf 'rate_limit_per_minute = 100000000\n' >"$data/canopy.toml"
  if [[ "$backend" == pg ]]; then
    local db="canopy_wbench_$$"
    psql "$CANOPY_BENCH_PG" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    extra=(--database-url "${CANOPY_BENCH_PG%/*}/$db")
  fi
  start "canopy-$backend" "$CANOPY" serve --data-dir "$data" --bind "$HOST:$PORT_CANOPY" --config "$data/canopy.toml" "${extra[@]+"${extra[@]}"}"
  local pid=$LAST_PID url="http://$HOST:$PORT_CANOPY"
  wait_ready "$url/v1/health" "$pid"
  local key
  key="$(tr -d '[:space:]' <"$data/admin.key")"
  local auth="Authorization: Bearer $key"
  project() {
    curl -fsS -H "$auth" -H 'Content-Type: application/json' -X POST "$url/v1/admin/clients" -d "{\"name\":\"$1\"}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
  }
  local p_mine p_boot p_adv
  p_mine="$(project mine)"
  p_boot="$(project boot)"
  p_adv="$(project advance)"

  log "$backend: seeding 10,000 tasks"
  python3 "$ROOT/bench/seed_work.py" "$url" "$key" mine --project "$p_mine"
  log "$backend: seeding the bootstrap project"
  python3 "$ROOT/bench/seed_work.py" "$url" "$key" bootstrap --project "$p_boot" >"$WORK/$backend.boot"
  sed -n 's/^run_kind=//p' "$WORK/$backend.boot" >"$WORK/$backend.run_kind"

  local h_agent="X-Minolith-Agent: bench"
  # One request each up front, so a broken setup fails here and not as a wall of non-2xx.
  curl -fsS -o /dev/null -H "$auth" -H "$h_agent" -H "X-Canopy-Project: $p_mine" "$url/v1/tasks/mine"
  curl -fsS -o "$WORK/$backend.bootstrap.json" -H "$auth" -H "$h_agent" -H "X-Canopy-Project: $p_boot" "$url/v1/bootstrap"
  run "${backend}_mine" "$pid" "$url/v1/tasks/mine" -H "$auth" -H "$h_agent" -H "X-Canopy-Project: $p_mine"
  run "${backend}_bootstrap" "$pid" "$url/v1/bootstrap" -H "$auth" -H "$h_agent" -H "X-Canopy-Project: $p_boot"

  if [[ "$(cat "$WORK/$backend.run_kind")" == runbook ]]; then
    local steps runs
    for steps in $ADVANCE_STEPS; do
      runs=$(((ADVANCE_BUDGET + steps - 2) / (steps - 1)))
      log "$backend: seeding $runs runs of a $steps-step runbook"
      python3 "$ROOT/bench/seed_work.py" "$url" "$key" advance --project "$p_adv" \
        --runs "$runs" --steps "$steps" --out "$WORK/$backend.runs$steps"
      RUNS_FILE="$WORK/$backend.runs$steps" run "${backend}_advance${steps}" "$pid" "$url" \
        -s "$ROOT/bench/lua/advance.lua" -H "$auth" -H "X-Canopy-Project: $p_adv"
    done
  else
    log "$backend: no runbooks in this build; advance skipped"
  fi
  stop "$pid"
  if [[ "$backend" == pg ]]; then psql "$CANOPY_BENCH_PG" -qc "DROP DATABASE IF EXISTS canopy_wbench_$$ WITH (FORCE)" >/dev/null; fi
}

BACKENDS="${BACKENDS:-sqlite${CANOPY_BENCH_PG:+ pg}}"
for be in $BACKENDS; do bench_backend "$be"; done

mkdir -p "$RESULTS"
WORK="$WORK" BACKENDS="$BACKENDS" CLK_TCK="$(getconf CLK_TCK)" OUT="$RESULTS/work.json" \
  READ_DURATION="$READ_DURATION" ADVANCE_STEPS="$ADVANCE_STEPS" python3 - <<'PY'
import json, os, re, subprocess, time
work = os.environ["WORK"]
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}
def ms(t):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", t); return float(m.group(1)) * UNIT[m.group(2)]
def parse(name):
    raw = open(f"{work}/{name}.wrk").read()
    n = int(re.search(r"(\d+) requests in", raw).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", raw)
    ticks = int(open(f"{work}/{name}.cpu").read())
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", raw).group(1)),
            "p50_ms": ms(re.search(r"^\s+50%\s+(\S+)", raw, re.M).group(1)),
            "p99_ms": ms(re.search(r"^\s+99%\s+(\S+)", raw, re.M).group(1)),
            "non_2xx": int(bad.group(1)) if bad else 0, "requests": n,
            "cpu_us_per_req": round(ticks / int(os.environ["CLK_TCK"]) * 1e6 / max(n, 1), 1)}
runs = {f[:-4]: parse(f[:-4]) for f in sorted(os.listdir(work)) if f.endswith(".wrk")}
base = runs["base_read"]["p50_ms"]
kinds = {be: open(f"{work}/{be}.run_kind").read().strip() for be in os.environ["BACKENDS"].split()}
out = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
       "binary_commit": os.environ.get("BINARY_COMMIT") or None,
       "machine": {"nproc": os.cpu_count(), "loadavg": open("/proc/loadavg").read().split()[:3]},
       "load": f"wrk -t1 -c1 -d{os.environ['READ_DURATION']} --latency",
       "bootstrap_run_kind": kinds, "runs": runs, "targets": {}}
print(f"{out['date']}, commit {out['commit']}{', binaries built from ' + out['binary_commit'] if out['binary_commit'] else ''}, load average {' '.join(out['machine']['loadavg'])}\n")
print("| run | req/s | p50 ms | p99 ms | p50 ÷ bare read p50 | server CPU µs/req | non-2xx |\n|---|---:|---:|---:|---:|---:|---:|")
for k, r in runs.items():
    print(f"| {k} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p50_ms'] / base:.1f}× | {r['cpu_us_per_req']} | {r['non_2xx']} |")
TARGETS = {f"advance{n}": 2.0 for n in os.environ["ADVANCE_STEPS"].split()}
TARGETS.update({"mine": 5.0, "bootstrap": 10.0})
print("\n| backend | measure | p50 | target | result |\n|---|---|---:|---|---|")
for be in os.environ["BACKENDS"].split():
    for what, limit in TARGETS.items():
        r = runs.get(f"{be}_{what}")
        if r is None:
            print(f"| {be} | {what} | — | ≤ {limit:g} ms | not measured (no runbooks in this build) |")
            continue
        met = r["p50_ms"] <= limit and r["non_2xx"] == 0
        out["targets"][f"{be}_{what}"] = {"p50_ms": r["p50_ms"], "limit_ms": limit, "met": met}
        note = f" ({kinds[be]} runs)" if what == "bootstrap" else ""
        if what.startswith("advance"):
            note = f" ({what[7:]}-step runbook)"
            what = "advance"
        print(f"| {be} | {what}{note} | {r['p50_ms']:.2f} ms | ≤ {limit:g} ms | {'met' if met else '**not met**'} |")
json.dump(out, open(os.environ["OUT"], "w"), indent=2)
print(f"\nWrote {os.environ['OUT']}")
PY
