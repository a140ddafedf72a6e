#!/usr/bin/env bash
# The official MCP conformance suite (npm @modelcontextprotocol/conformance) against a live
# `canopy serve --conformance-fixtures`, for every protocol revision the suite covers.
#
#   .ci/mcp-conformance.sh path/to/canopy
#
# Builds nothing. Installs Node 22 (the npm package node@22) and the suite into
# $HOME/.cache/canopy-node, reusing them when present. Fails on any scenario failure that
# .ci/mcp-conformance-baseline.txt does not list (and on a listed scenario that now passes).
set -euo pipefail
cd "$(dirname "$0")/.."

canopy="${1:?usage: .ci/mcp-conformance.sh path/to/canopy}"
canopy="$(cd "$(dirname "$canopy")" && pwd)/$(basename "$canopy")"
baseline="$PWD/.ci/mcp-conformance-baseline.txt"
revisions=(2025-06-18 2025-11-25)

# --- Node 22 and the suite ------------------------------------------------------------------
node_dir="$HOME/.cache/canopy-node"
node="$node_dir/node_modules/.bin/node"
suite="$node_dir/node_modules/@modelcontextprotocol/conformance/dist/index.js"
if [ ! -x "$node" ] || [ ! -f "$suite" ]; then
  echo "mcp-conformance: installing node@22 and @modelcontextprotocol/conformance into $node_dir"
  mkdir -p "$node_dir"
  (cd "$node_dir" && { [ -f package.json ] || echo '{"name":"canopy-node","private":true}' > package.json; } \
    && npm install --no-audit --no-fund --loglevel=error node@22 @modelcontextprotocol/conformance >/dev/null)
fi
"$node" --version

# --- The server -------------------------------------------------------------------------------
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
"$canopy" serve --conformance-fixtures --bind "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/mcp/info" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/mcp/info" >/dev/null || { cat "$work/server.log"; exit 1; }

# --- Baseline: "scenario-id  reason" lines → the suite's expected-failures YAML ----------------
ids="$(grep -vE '^[[:space:]]*(#|$)' "$baseline" | awk '{print $1}' || true)"
if [ -z "$ids" ]; then
  echo "server: []" >"$work/expected.yml"
else
  { echo "server:"; printf '  - %s\n' $ids; } >"$work/expected.yml"
fi

# --- Run every revision -----------------------------------------------------------------------
status=0
for rev in "${revisions[@]}"; do
  echo "=== MCP conformance, revision $rev"
  if ! (cd "$work" && "$node" "$suite" server --url "http://127.0.0.1:$port/mcp" \
      --spec-version "$rev" --expected-failures "$work/expected.yml" -o "$work/results-$rev"); then
    echo "mcp-conformance: revision $rev FAILED (scenarios outside the baseline failed, or the baseline is stale)"
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  echo "--- server log"; tail -n 50 "$work/server.log"
fi
exit "$status"
