#!/usr/bin/env bash
# The official MCP Python SDK (pip "mcp>=2,<3") against a live `canopy serve`.
#
#   .ci/mcp-python-client.sh path/to/canopy
#
# Builds nothing. Installs the SDK into a venv at $HOME/.cache/canopy-venv (reused when
# present), starts Canopy on a fresh data dir, and runs .ci/mcp_client.py and
# .ci/mcp_agent_session.py with the admin key.
set -euo pipefail
cd "$(dirname "$0")/.."

canopy="${1:?usage: .ci/mcp-python-client.sh path/to/canopy}"
canopy="$(cd "$(dirname "$canopy")" && pwd)/$(basename "$canopy")"

venv="$HOME/.cache/canopy-venv"
if ! "$venv/bin/python" -c 'import mcp, sys; sys.exit(0 if int(__import__("importlib.metadata").metadata.version("mcp").split(".")[0]) == 2 else 1)' 2>/dev/null; then
  echo "mcp-python-client: installing mcp>=2,<3 into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "mcp>=2,<3"
fi
"$venv/bin/python" -c 'import importlib.metadata as m; print("mcp", m.version("mcp"))'

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
"$canopy" serve --bind "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && [ -s "$work/data/admin.key" ] && break
  sleep 0.1
done
key="$(tr -d '[:space:]' <"$work/data/admin.key")"

if ! "$venv/bin/python" .ci/mcp_client.py "http://127.0.0.1:$port/mcp" "$key"; then
  echo "--- server log"; tail -n 50 "$work/server.log"
  exit 1
fi
# An agent's whole session (issue 6): bootstrap, tasks, a runbook run, the task done.
if ! "$venv/bin/python" .ci/mcp_agent_session.py "http://127.0.0.1:$port" "$key"; then
  echo "--- server log"; tail -n 50 "$work/server.log"
  exit 1
fi
