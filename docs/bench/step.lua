-- POST /api/v1/requests/{id}/actions {"action": "call"} with If-Match "r1", once per request:
-- the ids (submitted requests, revision 1) are read from $IDS, one per line; wrk thread k of n
-- takes the lines k, k+n, k+2n, … Prints one RESULT line (as intake.lua).
local token = os.getenv("TOKEN")
local ids = {}
for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
local threads = {}
local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
  table.insert(threads, thread)
end
function init(args)
  nthreads = tonumber(os.getenv("THREADS") or "2")
  at = tid
end
function request()
  local id = ids[at]
  at = at + nthreads
  if id == nil then id = "exhausted" end
  return wrk.format("POST", "/api/v1/requests/" .. id .. "/actions",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json",
     ["If-Match"] = '"r1"'}, '{"action": "call"}')
end
function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50=%.1fms p99=%.1fms max=%.1fms non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
