-- wrk: POST `{}` to PATH_TEMPLATE with `{id}` replaced by the next run id of RUNS_FILE, round-robin
-- (one id a line), so each run moves one step per round and none completes early.
-- Use with -t1: each wrk thread would start at the first id.
local ids = {}
local file = os.getenv("RUNS_FILE")
assert(file, "RUNS_FILE is required")
for line in io.lines(file) do
  if #line > 0 then ids[#ids + 1] = line end
end
assert(#ids > 0, "RUNS_FILE has no run ids")
local template = os.getenv("PATH_TEMPLATE") or "/v1/runbooks/runs/{id}/advance"
local i = 0
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #ids + 1
  local path = template:gsub("{id}", ids[i])
  return wrk.format(nil, path)
end
