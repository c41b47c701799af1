-- GET $TARGET with Authorization: Bearer $TOKEN; prints one RESULT line (as intake.lua).
local token = os.getenv("TOKEN")
local target = os.getenv("TARGET")
function request()
  return wrk.format("GET", target, {["Authorization"] = "Bearer " .. token})
end
function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50=%.2fms p99=%.2fms max=%.2fms non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
