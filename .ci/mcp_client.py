"""A real MCP client nobody here wrote (the official Python SDK, mcp>=2) against Canopy.

    python .ci/mcp_client.py http://127.0.0.1:PORT/mcp KEY

Connects over Streamable HTTP twice: with the SDK's default negotiation (it probes
`server/discover` at 2026-07-28 and speaks that stateless revision when the server does) and
with the `initialize` handshake (`mode="legacy"`). Each time it lists the tools, stores a
context entry and reads it back with get_context, and sends a bad `type` that must come back
as a tool result with isError true. Exits non-zero on the first thing that is not so.
"""

import asyncio
import json
import sys
import uuid

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def run(url, key, mode):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        version = client.protocol_version
        want = "2026-07-28" if mode == "auto" else "2025-11-25"
        check(version == want, f"[{mode}] negotiated protocol revision {version}")
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        check({"store_context", "get_context"} <= names, f"[{mode}] tools/list has store_context and get_context ({len(names)} tools)")

        title = f"python sdk {mode} {uuid.uuid4().hex[:8]}"
        stored = await client.call_tool(
            "store_context", {"type": "rule", "title": title, "body": "Written by the official Python SDK."}
        )
        check(not stored.is_error, f"[{mode}] store_context succeeded")
        entry = (stored.structured_content or {}).get("data") or json.loads(text_of(stored).split("\n")[0])["data"]
        entry_id = entry["id"]
        check(entry_id.startswith("ctx_"), f"[{mode}] store_context answered an id ({entry_id})")

        found = await client.call_tool("get_context", {"search": title.split()[-1], "limit": 10})
        check(not found.is_error, f"[{mode}] get_context succeeded")
        data = (found.structured_content or {}).get("data", [])
        match = [e for e in data if e["id"] == entry_id]
        check(len(match) == 1 and match[0]["title"] == title, f"[{mode}] get_context returns the stored entry")

        bad = await client.call_tool("store_context", {"type": "not-a-type", "title": "x", "body": "y"})
        check(bad.is_error is True, f"[{mode}] a bad type comes back with isError: true")
        envelope = json.loads(text_of(bad))
        check(envelope["error"]["field"] == "type", f"[{mode}] the error names the field: {envelope['error']['code']}")


async def main():
    url, key = sys.argv[1], sys.argv[2]
    await run(url, key, "auto")
    await run(url, key, "legacy")
    print("mcp python client: all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
