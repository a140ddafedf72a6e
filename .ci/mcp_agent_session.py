"""A scripted agent session through the official MCP Python SDK (mcp>=2), as issue 6 asks:

    bootstrap → get_my_tasks → start_run → get_current_step → advance_step … → update_task_status done

    python .ci/mcp_agent_session.py http://127.0.0.1:PORT KEY

Sets up over REST (an agent `riley`, a runbook with an action, a check, a gate and a branch, a
task assigned to riley), then works as riley over MCP (Streamable HTTP, header
X-Minolith-Agent: riley). Exits non-zero on the first thing that is not so.
"""

import asyncio
import json
import sys
import urllib.request
import uuid

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def rest(base, key, method, path, body=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as res:
        return json.loads(res.read() or b"{}")


def data(result):
    """The operation's output from a tool result (structuredContent, else the text)."""
    if result.structured_content is not None:
        return result.structured_content
    return json.loads("".join(getattr(c, "text", "") for c in result.content))


async def call(client, name, args):
    result = await client.call_tool(name, args)
    check(not result.is_error, f"{name} succeeded")
    return data(result)


async def session(base, key):
    suffix = uuid.uuid4().hex[:6]
    rest(base, key, "POST", "/v1/agents", {"name": "riley", "role": "Releases things"})
    runbook = rest(base, key, "POST", "/v1/runbooks", {
        "name": f"Release {suffix}",
        "variables": [{"name": "version", "required": True}],
        "steps": [
            {"key": "build", "title": "Build {version}", "type": "action"},
            {"key": "tests", "title": "Run the tests", "type": "check", "on_fail": "build"},
            {"key": "signoff", "title": "Sign-off", "type": "gate"},
            {"key": "channel", "title": "Pick a channel", "type": "branch",
             "routes": {"stable": "publish", "hold": "park"}},
            # Actions go on by position: publish is last, so the stable route ends there.
            {"key": "park", "title": "Park it", "type": "action"},
            {"key": "publish", "title": "Publish {version}", "type": "action"},
        ],
    })["data"]
    task = rest(base, key, "POST", "/v1/tasks", {
        "title": f"Ship 1.{suffix}", "priority": "high",
        "assignee": {"type": "agent", "name": "riley"},
    })["data"]

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}", "X-Minolith-Agent": "riley"})
    async with Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
        boot = (await call(client, "bootstrap", {}))["data"]
        check(boot["agent"]["name"] == "riley", "bootstrap answers as riley")
        check(any(t["id"] == task["id"] for t in boot["active_state"]["my_tasks"]), "bootstrap lists riley's task")
        check(len(boot["follow_up"]) > 0, f"bootstrap suggests follow-ups: {boot['follow_up'][0]!r}")

        mine = (await call(client, "get_my_tasks", {}))["data"]
        check(mine and mine[0]["id"] == task["id"], "get_my_tasks has the task first")
        await call(client, "update_task_status", {"id": task["id"], "status": "review", "note": "starting the release runbook"})

        run = (await call(client, "start_run", {"id": runbook["id"], "variables": {"version": "1.2.0"}}))["data"]
        run_id = run["id"]
        visited = []
        while True:
            cur = (await call(client, "get_current_step", {"run_id": run_id}))["data"]
            step = cur["step"]
            if step is None:
                break
            visited.append(step["key"])
            if step["key"] == "build":
                check(step["title"] == "Build 1.2.0", "the current step has its variable substituted")
            if step["type"] == "gate":
                pending = await client.call_tool("advance_step", {"run_id": run_id})
                check(pending.is_error and "gate_pending" in json.dumps(data(pending)), "advancing an undecided gate is gate_pending")
                await call(client, "decide_gate", {"run_id": run_id, "decision": "approved", "notes": "lgtm"})
            elif step["type"] == "branch":
                await call(client, "advance_step", {"run_id": run_id, "outcome": "stable"})
            else:
                await call(client, "advance_step", {"run_id": run_id, "notes": f"did {step['key']}"})
            check(len(visited) < 20, "the run does not loop")
        final = (await call(client, "get_run", {"run_id": run_id}))["data"]
        check(final["status"] == "completed", f"the run completed through {' → '.join(visited)}")
        check(visited == ["build", "tests", "signoff", "channel", "publish"], "the branch took the stable route")

        done = (await call(client, "update_task_status", {"id": task["id"], "status": "done", "resolution": f"Released 1.2.0 (run {run_id})"}))["data"]
        check(done["status"] == "done", "the task is done")
        left = (await call(client, "get_my_tasks", {}))["data"]
        check(all(t["id"] != task["id"] for t in left), "get_my_tasks no longer lists it")

        again = (await call(client, "bootstrap", {}))["data"]
        changes = again["changes_since_last_session"]
        check("tasks" in changes["services"] and "runs" in changes["services"], "the next bootstrap reports the task and the run as changed")


def main():
    base, key = sys.argv[1].rstrip("/"), sys.argv[2]
    asyncio.run(session(base, key))
    print("agent session: all checks passed")


if __name__ == "__main__":
    main()
