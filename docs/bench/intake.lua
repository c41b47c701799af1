-- POST /api/v1/requests with the README's body; KEYED=1 adds a unique Idempotency-Key.
local token = os.getenv("TOKEN")
local keyed = os.getenv("KEYED") == "1"
local body = [[{"matter": "tax.registration", "channel": "online",
 "applicant": {"name": "上海马上办科技有限公司", "uscc": "91350100M000100Y43"},
 "contact_email": "office@example.com", "form": {"taxpayer_type": "small_scale"},
 "materials": [{"code": "business_licence", "name": "licence.pdf", "size_bytes": 48213,
 "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]}]]
local counter = 0
local thread_id = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
function request()
  counter = counter + 1
  local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
  if keyed then
    headers["Idempotency-Key"] = string.format("bench-%d-%d-%d", tid or 0, counter, os.time())
  end
  return wrk.format("POST", "/api/v1/requests", headers, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50=%.1fms p99=%.1fms max=%.1fms non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
