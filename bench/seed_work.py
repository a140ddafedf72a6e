"""Seeds Canopy projects for the work-service benchmarks (bench/work.sh, issue 6).

usage:
  seed_work.py BASE_URL KEY mine      --project ID [--tasks 10000] [--mine 2000]
  seed_work.py BASE_URL KEY bootstrap --project ID [--entries 1000] [--tasks 1000] [--runs 50]
                                      [--run-kind auto|runbook|stackmint]
  seed_work.py BASE_URL KEY advance   --project ID [--runs 40] [--steps 200] --out FILE

mine: agents `bench`, `other-a`, `other-b`; TASKS tasks, MINE of them assigned to `bench`
  (10 % of those then moved to `done` with a resolution, so `mine` has to leave them out), a
  further 30 % of all tasks to the two other agents, the rest unassigned. Priorities cycle
  low/medium/high/urgent (uneven mix), a fifth of the open ones are in `review`.
bootstrap: ENTRIES context entries through the bulk API (5 % tagged `bootstrap`, 10 %
  `priority: high`, 10 % of type `event`), agents `bench` and `helper`, TASKS tasks (20 % to
  `bench`), and RUNS active runs: runbook runs of one 20-step runbook when the build has
  `POST /v1/runbooks`, else Stackmint runs of a `wait` bud (1 h, async, so they stay active).
  Prints `run_kind=runbook|stackmint` on stdout.
advance: one runbook of STEPS `action` steps and RUNS runs of it; writes the run ids, one a
  line, to FILE (the wrk script advances them round-robin, so RUNS × (STEPS − 1) advances are
  available before any run completes).

Requests go over keep-alive connections from 8 threads. Deterministic.
"""
import http.client
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

base, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
project = opts.get("--project")
u = urlparse(base)
local = threading.local()
THREADS = 8


class HttpError(Exception):
    pass


def call(method, path, body=None, ok=(200, 201, 202), headers=None):
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = local.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if project:
        h["X-Canopy-Project"] = project
    h.update(headers or {})
    data = None if body is None else json.dumps(body).encode()
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
    except (http.client.HTTPException, OSError):
        local.conn = None
        conn.close()
        raise
    if r.status not in ok:
        raise HttpError(f"{method} {path} -> {r.status}: {raw[:500].decode(errors='replace')}")
    return r.status, (json.loads(raw) if raw else None)


def parallel(fn, items):
    with ThreadPoolExecutor(THREADS) as ex:
        return list(ex.map(fn, items))


PRIORITIES = ["medium", "low", "high", "medium", "urgent", "medium", "low", "high"]


def agent(name, role="Benchmark agent"):
    call("POST", "/v1/agents", {"name": name, "role": role, "prompt": f"You are {name}."})


def task_body(i, assignee):
    body = {
        "title": f"Task {i}: fix the widget number {i % 97}",
        "description": f"Steps to reproduce for task {i}. The widget fails when the input is {i}.",
        "category": ["bug", "feature", "chore"][i % 3],
        "priority": PRIORITIES[i % len(PRIORITIES)],
        "tags": [f"area{i % 7}"],
    }
    if i % 5 == 4:
        body["status"] = "review"
    if assignee:
        body["assignee"] = {"type": "agent", "name": assignee}
    return body


def create_tasks(n, assign):
    """assign(i) -> agent name or None. Returns the ids of the tasks created for `bench`."""
    def one(i):
        who = assign(i)
        _, t = call("POST", "/v1/tasks", task_body(i, who))
        return t["data"]["id"] if who == "bench" else None
    return [x for x in parallel(one, range(n)) if x]


def finish(ids):
    def done(tid):
        call("POST", f"/v1/tasks/{tid}/status", {"status": "done", "resolution": "Fixed."})
    parallel(done, ids)


def seed_mine():
    tasks, mine = int(opts.get("--tasks", 10000)), int(opts.get("--mine", 2000))
    for a in ("bench", "other-a", "other-b"):
        agent(a)
    # Every (tasks/mine)-th task is bench's; 30 % of all go to the others; the rest unassigned.
    stride = tasks // mine

    def assign(i):
        if i % stride == 0 and i // stride < mine:
            return "bench"
        return {1: "other-a", 2: "other-a", 3: "other-b"}.get(i % 10)
    ids = create_tasks(tasks, assign)
    finish(ids[::10])
    print(f"mine: {tasks} tasks, {len(ids)} assigned to bench, {len(ids[::10])} of them done", file=sys.stderr)


def has_runbooks():
    status, _ = call("GET", "/v1/runbooks", ok=(200, 404, 405))
    return status == 200


def create_runbook(name, steps):
    _, rb = call("POST", "/v1/runbooks", {
        "name": name,
        "description": "Benchmark runbook.",
        "variables": [{"name": "target", "required": False, "default": "prod"}],
        "steps": [{"key": f"s{i}", "title": f"Step {i} on {{target}}",
                   "instructions": f"Do thing {i} on {{target}}.", "type": "action"}
                  for i in range(steps)],
    })
    return (rb.get("data") or rb)["id"]


def start_runs(rb, n):
    def one(i):
        _, run = call("POST", f"/v1/runbooks/{rb}/runs", {"variables": {"target": f"host{i}"}})
        return (run.get("data") or run)["id"]
    return parallel(one, range(n))


def seed_bootstrap():
    entries, tasks, runs = (int(opts.get("--entries", 1000)), int(opts.get("--tasks", 1000)),
                            int(opts.get("--runs", 50)))
    kind = opts.get("--run-kind", "auto")
    done = 0
    while done < entries:
        n = min(100, entries - done)
        items = []
        for k in range(done, done + n):
            e = {"type": "event" if k % 10 == 7 else "fact",
                 "title": f"entry {k}", "body": f"Standing knowledge number {k}: " + "word " * 30,
                 "tags": [f"t{k % 10}"]}
            if k % 20 == 0:
                e["tags"].append("bootstrap")
            if k % 10 == 3:
                e["priority"] = "high"
            items.append(e)
        call("POST", "/v1/context/entries/bulk", {"entries": items})
        done += n
    agent("bench")
    agent("helper", "Helps")
    ids = create_tasks(tasks, lambda i: "bench" if i % 5 == 0 else None)
    finish(ids[::10])
    if kind == "auto":
        kind = "runbook" if has_runbooks() else "stackmint"
    if kind == "runbook":
        start_runs(create_runbook("bootstrap bench", 20), runs)
    else:
        _, bud = call("POST", "/v1/admin/buds", {"name": "Hold", "kind": "wait",
                                                  "config": {"duration_ms": 3600000}})
        call("POST", f"/v1/admin/clients/{project}/buds/{bud['id']}/assign")

        def one(i):
            _, r = call("POST", f"/v1/clients/{project}/buds/{bud['id']}/run",
                        {"input": {"n": i}, "mode": "async"})
            return r["run"]["id"]
        parallel(one, range(runs))
    print(f"run_kind={kind}")
    print(f"bootstrap: {entries} entries, {tasks} tasks ({len(ids)} to bench), {runs} {kind} runs",
          file=sys.stderr)


def seed_advance():
    runs, steps, out = int(opts.get("--runs", 40)), int(opts.get("--steps", 200)), opts["--out"]
    rb = create_runbook("advance bench", steps)
    ids = start_runs(rb, runs)
    with open(out, "w") as f:
        f.write("\n".join(ids) + "\n")
    print(f"advance: runbook {rb} with {steps} action steps, {runs} runs", file=sys.stderr)


{"mine": seed_mine, "bootstrap": seed_bootstrap, "advance": seed_advance}[mode]()
