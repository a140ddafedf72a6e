#!/usr/bin/env bash
# Foundation benchmarks (issue 2): Canopy against bare axum baselines, all on 127.0.0.1.
#
#   bash bench/run.sh
#
# Builds release binaries, then starts one server at a time and loads it with wrk
# (64 connections, 2 threads, 10 s, --latency):
#   1. bare constant       GET /                   (canopy-bench-baseline const)
#   2. bare sqlite read    GET /items/{id}         (canopy-bench-baseline sqlite)
#   3. canopy health       GET /v1/health
#   4. canopy auth'd GET   GET /v1/clients/{id}    (Bearer key with a raised rate limit)
# and measures Canopy's time-to-healthy (exec -> first 200 on /v1/health, median of N runs)
# and its resident memory (VmRSS) idle after start and idle after load. For every load it also
# records the server process's CPU time per request (utime+stime from /proc/PID/stat), which
# is steadier than req/s on a small machine where wrk and the server share the cores.
# Writes bench/results/foundation.json and prints a markdown table.
#
# Knobs (environment): DURATION (10s), CONNECTIONS (64), THREADS (2), STARTUP_RUNS (7),
# SKIP_BUILD=1 to reuse target/release binaries.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
STARTUP_RUNS="${STARTUP_RUNS:-7}"
HOST=127.0.0.1
PORT_CONST=18081
PORT_SQLITE=18082
PORT_CANOPY=18083

RESULTS="$ROOT/bench/results"
OUT="$RESULTS/foundation.json"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
CANOPY="$TARGET_DIR/release/canopy"
BASELINE="$TARGET_DIR/release/canopy-bench-baseline"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "bench: '$tool' is required (apt-get install -y wrk curl python3)" >&2
    exit 1
  }
done

WORK="$(mktemp -d -t canopy-bench.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# ---- build --------------------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building release binaries"
  cargo build --release --locked -p canopy -p canopy-bench-baseline >&2
fi
[[ -x "$CANOPY" && -x "$BASELINE" ]] || {
  echo "bench: missing $CANOPY or $BASELINE" >&2
  exit 1
}

# ---- helpers ------------------------------------------------------------------------------
# start NAME CMD... : run a server in the background, remember its pid in $LAST_PID.
start() {
  local name="$1"
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# stop PID : stop one server, wait for it to exit, and forget it (so cleanup never signals a
# pid that the system may since have handed to another process).
stop() {
  local keep=() p
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

# wait_ready URL PID : poll until URL answers 200 (10 s at most).
wait_ready() {
  local url="$1" pid="$2" i
  for i in $(seq 1 2000); do
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || {
      echo "bench: server for $url exited early" >&2
      cat "$WORK"/*.err >&2 || true
      exit 1
    }
    sleep 0.005
  done
  echo "bench: $url not ready after 10 s" >&2
  exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# cpu_ticks PID : user+system CPU time of PID so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK="$(getconf CLK_TCK)"

# load NAME PID URL [HEADER] : run wrk against the server PID, keep its report in $WORK/NAME.wrk
# and the server's CPU ticks spent during the run in $WORK/NAME.cpu; print the report to stderr.
load() {
  local name="$1" pid="$2" url="$3" header="${4:-}" t0 t1
  local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency)
  [[ -n "$header" ]] && args+=(-H "$header")
  log "wrk ${args[*]/Bearer */Bearer ***} $url"
  t0=$(cpu_ticks "$pid")
  wrk "${args[@]}" "$url" >"$WORK/$name.wrk"
  t1=$(cpu_ticks "$pid")
  echo "$((t1 - t0))" >"$WORK/$name.cpu"
  cat "$WORK/$name.wrk" >&2
}

# ---- 1. bare constant ---------------------------------------------------------------------
start const "$BASELINE" const "$PORT_CONST"
wait_ready "http://$HOST:$PORT_CONST/" "$LAST_PID"
load bare_const "$LAST_PID" "http://$HOST:$PORT_CONST/"
stop "$LAST_PID"

# ---- 2. bare sqlite read ------------------------------------------------------------------
start sqlite "$BASELINE" sqlite "$PORT_SQLITE" "$WORK/baseline.db"
wait_ready "http://$HOST:$PORT_SQLITE/items/1" "$LAST_PID"
load bare_sqlite_read "$LAST_PID" "http://$HOST:$PORT_SQLITE/items/500"
stop "$LAST_PID"

# ---- 3. canopy time-to-healthy (fresh data dir each run: includes first-start bootstrap) --
now_ns() { date +%s%N; }
startup_ms=()
for run in $(seq 1 "$STARTUP_RUNS"); do
  dir="$WORK/startup-$run"
  t0=$(now_ns)
  start "startup-$run" "$CANOPY" serve --data-dir "$dir" --bind "$HOST:$PORT_CANOPY"
  pid=$LAST_PID
  until curl -fsS -o /dev/null --max-time 1 "http://$HOST:$PORT_CANOPY/v1/health" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || {
      cat "$WORK/startup-$run.err" >&2
      exit 1
    }
    sleep 0.002
  done
  t1=$(now_ns)
  startup_ms+=("$(((t1 - t0) / 1000))")
  stop "$pid"
done
# The same, restarting on an existing (already bootstrapped) data dir.
restart_ms=()
for run in $(seq 1 "$STARTUP_RUNS"); do
  dir="$WORK/startup-1"
  t0=$(now_ns)
  start "restart-$run" "$CANOPY" serve --data-dir "$dir" --bind "$HOST:$PORT_CANOPY"
  pid=$LAST_PID
  until curl -fsS -o /dev/null --max-time 1 "http://$HOST:$PORT_CANOPY/v1/health" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || {
      cat "$WORK/restart-$run.err" >&2
      exit 1
    }
    sleep 0.002
  done
  t1=$(now_ns)
  restart_ms+=("$(((t1 - t0) / 1000))")
  stop "$pid"
done
log "time-to-healthy, first start (us): ${startup_ms[*]}"
log "time-to-healthy, restart (us):     ${restart_ms[*]}"

# ---- 4. canopy: idle RSS, health, authenticated GET, RSS after load -----------------------
DATA="$WORK/canopy-data"
start canopy "$CANOPY" serve --data-dir "$DATA" --bind "$HOST:$PORT_CANOPY"
CANOPY_PID=$LAST_PID
wait_ready "http://$HOST:$PORT_CANOPY/v1/health" "$CANOPY_PID"
sleep 2
RSS_IDLE=$(rss_kib "$CANOPY_PID")
log "canopy idle VmRSS: ${RSS_IDLE} KiB"

ADMIN_KEY="$(tr -d '[:space:]' <"$DATA/admin.key")"
api() { curl -fsS --max-time 5 -H "Authorization: Bearer $1" -H 'Content-Type: application/json' "${@:2}"; }
BENCH_KEY="$(api "$ADMIN_KEY" -X POST "http://$HOST:$PORT_CANOPY/api/admin/access-keys" \
  -d '{"name":"bench","scopes":["admin"],"rate_limit":100000000}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
CLIENT_ID="$(api "$BENCH_KEY" "http://$HOST:$PORT_CANOPY/v1/clients" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')"
# One authenticated request up front, so a broken key fails here and not as a wall of non-2xx.
api "$BENCH_KEY" -o /dev/null "http://$HOST:$PORT_CANOPY/v1/clients/$CLIENT_ID"

load canopy_health "$CANOPY_PID" "http://$HOST:$PORT_CANOPY/v1/health"
load canopy_auth_get "$CANOPY_PID" "http://$HOST:$PORT_CANOPY/v1/clients/$CLIENT_ID" "Authorization: Bearer $BENCH_KEY"
RSS_AFTER_PEAK=$(awk '/^VmHWM:/ {print $2}' "/proc/$CANOPY_PID/status")
sleep 2
RSS_AFTER=$(rss_kib "$CANOPY_PID")
log "canopy VmRSS after load (idle 2 s): ${RSS_AFTER} KiB, peak VmHWM: ${RSS_AFTER_PEAK} KiB"
stop "$CANOPY_PID"

# ---- summary ------------------------------------------------------------------------------
mkdir -p "$RESULTS"
export WORK OUT CLK_TCK RSS_IDLE RSS_AFTER RSS_AFTER_PEAK DURATION CONNECTIONS THREADS
export STARTUP_US="${startup_ms[*]}" RESTART_US="${restart_ms[*]}"
python3 - <<'PY'
import json, os, platform, re, statistics, subprocess, time

work = os.environ["WORK"]
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return round(float(m.group(1)) * UNIT[m.group(2)], 3)


def parse(name):
    raw = open(os.path.join(work, name + ".wrk")).read()
    out = {"requests_per_sec": float(re.search(r"Requests/sec:\s+([\d.]+)", raw).group(1))}
    for pct in ("50", "75", "90", "99"):
        out[f"p{pct}_ms"] = ms(re.search(rf"^\s+{pct}%\s+(\S+)", raw, re.M).group(1))
    lat = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", raw)
    out["mean_ms"], out["max_ms"] = ms(lat.group(1)), ms(lat.group(3))
    out["requests"] = int(re.search(r"(\d+) requests in", raw).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", raw)
    out["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    errs = re.search(r"Socket errors:(.*)", raw)
    out["socket_errors"] = errs.group(1).strip() if errs else None
    ticks = int(open(os.path.join(work, name + ".cpu")).read())
    out["server_cpu_us_per_request"] = round(ticks / int(os.environ["CLK_TCK"]) * 1e6 / out["requests"], 1)
    return out


runs = {n: parse(n) for n in ("bare_const", "bare_sqlite_read", "canopy_health", "canopy_auth_get")}
startup = [int(x) / 1000 for x in os.environ["STARTUP_US"].split()]
restart = [int(x) / 1000 for x in os.environ["RESTART_US"].split()]
rss_idle = int(os.environ["RSS_IDLE"]) / 1024
rss_after = int(os.environ["RSS_AFTER"]) / 1024
rss_peak = int(os.environ["RSS_AFTER_PEAK"]) / 1024

auth_ratio = runs["canopy_auth_get"]["requests_per_sec"] / runs["bare_sqlite_read"]["requests_per_sec"]
health_ratio = runs["canopy_health"]["requests_per_sec"] / runs["bare_const"]["requests_per_sec"]
startup_med = statistics.median(startup)

targets = {
    "auth_get_ratio_ge_0_9": auth_ratio >= 0.9,
    "auth_get_p99_le_10ms": runs["canopy_auth_get"]["p99_ms"] <= 10.0,
    "health_ratio_ge_0_7": health_ratio >= 0.7,
    "idle_rss_le_30mib": rss_idle <= 30.0,
    "healthy_within_200ms": startup_med <= 200.0,
}


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


summary = {
    "benchmark": "foundation",
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release()},
    "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "git_dirty": bool(subprocess.run(["git", "status", "--porcelain", "--", "crates"], capture_output=True, text=True).stdout.strip()),
    "load": {"tool": "wrk", "connections": int(os.environ["CONNECTIONS"]), "threads": int(os.environ["THREADS"]), "duration": os.environ["DURATION"]},
    "runs": runs,
    "ratios": {"auth_get_over_bare_sqlite_read": round(auth_ratio, 3), "health_over_bare_const": round(health_ratio, 3)},
    "canopy": {
        "idle_rss_mib": round(rss_idle, 1),
        "rss_after_load_mib": round(rss_after, 1),
        "peak_rss_mib": round(rss_peak, 1),
        "time_to_healthy_ms": {"median": round(startup_med, 1), "runs": startup, "fresh_data_dir": True},
        "time_to_healthy_restart_ms": {"median": round(statistics.median(restart), 1), "runs": restart, "fresh_data_dir": False},
    },
    "targets_met": targets,
}
with open(os.environ["OUT"], "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")

ok = lambda b: "met" if b else "**not met**"
r = runs
print(f"Machine: {summary['machine']['nproc']} × {summary['machine']['cpu']}; {summary['date']}; commit {summary['git_commit']}{' (dirty)' if summary['git_dirty'] else ''}")
print(f"Load: wrk -t{os.environ['THREADS']} -c{os.environ['CONNECTIONS']} -d{os.environ['DURATION']} --latency\n")
print("| target | req/s | p50 ms | p99 ms | server CPU µs/req | non-2xx |")
print("|---|---:|---:|---:|---:|---:|")
for key, label in (("bare_const", "bare axum, constant JSON `GET /`"),
                   ("bare_sqlite_read", "bare axum + sqlx SQLite PK read `GET /items/{id}`"),
                   ("canopy_health", "Canopy `GET /v1/health`"),
                   ("canopy_auth_get", "Canopy authenticated `GET /v1/clients/{id}`")):
    x = r[key]
    print(f"| {label} | {x['requests_per_sec']:,.0f} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['server_cpu_us_per_request']:.1f} | {x['non_2xx']} |")
print()
print("| measure | value | target | result |")
print("|---|---:|---|---|")
print(f"| authenticated GET ÷ bare SQLite read | {auth_ratio:.2f}× | ≥ 0.9× | {ok(targets['auth_get_ratio_ge_0_9'])} |")
print(f"| authenticated GET p99 | {r['canopy_auth_get']['p99_ms']:.2f} ms | ≤ 10 ms | {ok(targets['auth_get_p99_le_10ms'])} |")
print(f"| health ÷ bare constant | {health_ratio:.2f}× | ≥ 0.7× | {ok(targets['health_ratio_ge_0_7'])} |")
print(f"| Canopy idle RSS (VmRSS, 2 s after start) | {rss_idle:.1f} MiB | ≤ 30 MiB | {ok(targets['idle_rss_le_30mib'])} |")
print(f"| Canopy RSS after load (VmRSS, 2 s idle) / peak (VmHWM) | {rss_after:.1f} / {rss_peak:.1f} MiB | — | — |")
print(f"| time to healthy, first start (median of {len(startup)}) | {startup_med:.0f} ms | ≤ 200 ms | {ok(targets['healthy_within_200ms'])} |")
print(f"| time to healthy, restart on existing data (median of {len(restart)}) | {statistics.median(restart):.0f} ms | — | — |")
print(f"\nWrote {os.environ['OUT']}")
PY
