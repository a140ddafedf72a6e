-- wrk: POST the JSON body in the BODY environment variable (or the file named by BODY_FILE).
local body = os.getenv("BODY")
local file = os.getenv("BODY_FILE")
if file then
  local f = assert(io.open(file, "r"))
  body = f:read("*a")
  f:close()
end
wrk.method = "POST"
wrk.body = body or "{}"
wrk.headers["Content-Type"] = "application/json"
