#!/usr/bin/env bash
# Knowledge-service benchmarks (issue 3): context creates against a bare insert baseline, list
# with a tag filter and search at 1k and 100k entries, bulk create of 100. SQLite always;
# PostgreSQL too when CANOPY_BENCH_PG is a server URL (a fresh database is created on it).
#
#   bash bench/knowledge.sh                 # SQLite
#   CANOPY_BENCH_PG=postgres://postgres@127.0.0.1:5432/test bash bench/knowledge.sh
#
# Creates: wrk -t2 -c64 (and -c16) for DURATION against
#   1. bare axum + sqlx: one SQLite INSERT per request    (canopy-bench-baseline insert)
#   2. Canopy POST /v1/context/entries (entry + tags + search index + audit + usage counters)
# Reads: wrk -t1 -c1 for READ_DURATION, p50 latency, at 1,000 and 100,000 entries (seeded with
# bench/seed_context.py through the bulk API):
#   GET /v1/context/entries?tags=t3     (a tag on 10 % of entries)
#   GET /v1/context/entries?search=wNNNN (a word in about 1 % of entries)
# Bulk: wrk -t1 -c1 POST /v1/context/entries/bulk with 100 entries, p50 latency.
# Server CPU per request is read from /proc. Prints markdown tables; writes
# bench/results/knowledge.json.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DURATION="${DURATION:-10s}"
READ_DURATION="${READ_DURATION:-5s}"
BIG="${BIG:-100000}"
HOST=127.0.0.1
PORT_BASE=18091
PORT_CANOPY=18093
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CANOPY="$TARGET_DIR/release/canopy"
BASELINE="$TARGET_DIR/release/canopy-bench-baseline"
RESULTS="$ROOT/bench/results"
LUA="$ROOT/bench/lua/post.lua"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is required (apt-get install -y wrk curl python3)" >&2; exit 1; }
done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release --locked -p canopy -p canopy-bench-baseline >&2
fi

WORK="$(mktemp -d -t canopy-kbench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "bench: $*" >&2; }
start() { local name="$1"; shift; "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" & LAST_PID=$!; PIDS+=("$LAST_PID"); }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_ready() {
  for _ in $(seq 1 2000); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$WORK"/*.err >&2; exit 1; }
    sleep 0.005
  done
  exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run NAME PID THREADS CONNS DURATION URL [wrk args...]
run() {
  local name="$1" pid="$2" t="$3" c="$4" d="$5" url="$6" t0 t1
  shift 6
  log "wrk -t$t -c$c -d$d $url"
  t0=$(cpu_ticks "$pid")
  wrk -t"$t" -c"$c" -d"$d" --latency "$@" "$url" >"$WORK/$name.wrk"
  t1=$(cpu_ticks "$pid")
  echo "$((t1 - t0))" >"$WORK/$name.cpu"
  grep -E "Requests/sec|50%|Non-2xx" "$WORK/$name.wrk" >&2 || true
}

# ---- bare insert baseline ------------------------------------------------------------------
start base "$BASELINE" insert "$PORT_BASE" "$WORK/base.db"
BASE_PID=$LAST_PID
sleep 0.3
BODY='{}' run base_c64 "$BASE_PID" 2 64 "$DURATION" "http://$HOST:$PORT_BASE/items" -s "$LUA"
BODY='{}' run base_c16 "$BASE_PID" 2 16 "$DURATION" "http://$HOST:$PORT_BASE/items" -s "$LUA"
stop "$BASE_PID"

# ---- canopy, per backend -------------------------------------------------------------------
bench_backend() {
  local backend="$1" data="$WORK/canopy-$1" extra=()
  mkdir -p "$data"
  printf 'rate_limit_per_minute = 100000000\n' >"$data/canopy.toml"
  if [[ "$backend" == pg ]]; then
    local db="canopy_bench_$$"
    psql "$CANOPY_BENCH_PG" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    extra=(--database-url "${CANOPY_BENCH_PG%/*}/$db")
  fi
  start "canopy-$backend" "$CANOPY" serve --data-dir "$data" --bind "$HOST:$PORT_CANOPY" --config "$data/canopy.toml" "${extra[@]+"${extra[@]}"}"
  local pid=$LAST_PID url="http://$HOST:$PORT_CANOPY"
  wait_ready "$url/v1/health" "$pid"
  local key
  key="$(tr -d '[:space:]' <"$data/admin.key")"
  local auth="Authorization: Bearer $key"
  local one='{"type":"fact","title":"bench entry","body":"created under load by wrk","tags":["bench","load"]}'
  BODY="$one" run "${backend}_create_c64" "$pid" 2 64 "$DURATION" "$url/v1/context/entries" -s "$LUA" -H "$auth"
  BODY="$one" run "${backend}_create_c16" "$pid" 2 16 "$DURATION" "$url/v1/context/entries" -s "$LUA" -H "$auth"
  # Reads at 1k and BIG entries in a second project (the creates above stay in `default`).
  curl -fsS -H "$auth" -H 'Content-Type: application/json' -X POST "$url/v1/admin/clients" -d '{"name":"reads"}' >"$WORK/client.json"
  local proj
  proj="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/client.json")"
  local ph="X-Canopy-Project: $proj"
  python3 "$ROOT/bench/seed_context.py" "$url" "$key" 1000 --project "$proj"
  for size in 1000 "$BIG"; do
    if [[ "$size" != 1000 ]]; then
      log "seeding to $size entries"
      python3 "$ROOT/bench/seed_context.py" "$url" "$key" "$((size - 1000))" --project "$proj" --offset 1000
    fi
    run "${backend}_tag_${size}" "$pid" 1 1 "$READ_DURATION" "$url/v1/context/entries?tags=t3" -H "$auth" -H "$ph"
    run "${backend}_search_${size}" "$pid" 1 1 "$READ_DURATION" "$url/v1/context/entries?search=w0042" -H "$auth" -H "$ph"
  done
  python3 - "$WORK/bulk.json" <<'PY'
import json, sys
items = [{"type": "fact", "title": f"bulk {i}", "body": "bulk create of one hundred", "tags": ["bulk"]} for i in range(100)]
json.dump({"entries": items}, open(sys.argv[1], "w"))
PY
  BODY_FILE="$WORK/bulk.json" run "${backend}_bulk100" "$pid" 1 1 "$READ_DURATION" "$url/v1/context/entries/bulk" -s "$LUA" -H "$auth"
  stop "$pid"
  if [[ "$backend" == pg ]]; then psql "$CANOPY_BENCH_PG" -qc "DROP DATABASE IF EXISTS canopy_bench_$$ WITH (FORCE)" >/dev/null; fi
}

bench_backend sqlite
BACKENDS="sqlite"
if [[ -n "${CANOPY_BENCH_PG:-}" ]]; then bench_backend pg; BACKENDS="sqlite pg"; fi

mkdir -p "$RESULTS"
WORK="$WORK" BACKENDS="$BACKENDS" BIG="$BIG" CLK_TCK="$(getconf CLK_TCK)" OUT="$RESULTS/knowledge.json" python3 - <<'PY'
import json, os, re, subprocess, time
work, big = os.environ["WORK"], os.environ["BIG"]
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
b64, b16 = runs["base_c64"]["rps"], runs["base_c16"]["rps"]
out = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
       "runs": runs}
print(f"{out['date']}, commit {out['commit']}\n")
print("| run | req/s | p50 ms | p99 ms | server CPU µs/req | non-2xx |\n|---|---:|---:|---:|---:|---:|")
for k, r in runs.items():
    print(f"| {k} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_us_per_req']} | {r['non_2xx']} |")
print("\n| backend | creates ÷ bare insert (c64) | (c16) | tag list p50 1k / big | search p50 1k / big | bulk 100 p50 |\n|---|---:|---:|---|---|---:|")
for be in os.environ["BACKENDS"].split():
    c64, c16 = runs[f"{be}_create_c64"]["rps"] / b64, runs[f"{be}_create_c16"]["rps"] / b16
    t1, tb = runs[f"{be}_tag_1000"]["p50_ms"], runs[f"{be}_tag_{big}"]["p50_ms"]
    s1, sb = runs[f"{be}_search_1000"]["p50_ms"], runs[f"{be}_search_{big}"]["p50_ms"]
    print(f"| {be} | {c64:.2f}× | {c16:.2f}× | {t1:.2f} / {tb:.2f} ms ({tb/t1:.1f}×) | {s1:.2f} / {sb:.2f} ms ({sb/s1:.1f}×) | {runs[f'{be}_bulk100']['p50_ms']:.2f} ms |")
json.dump(out, open(os.environ["OUT"], "w"), indent=2)
PY
