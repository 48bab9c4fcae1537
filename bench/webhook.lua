-- wrk script: Stripe events, each a different event id, signed beforehand
-- (HMAC is not available in wrk's Lua) by scripts/bench-webhooks into the
-- file EVENTS names: one "signature<TAB>body" per line. Thread n of k
-- sends lines n, n+k, n+2k, … so no event is delivered twice.

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  events = {}
  failures = 0
  local k = tonumber(os.getenv("WRK_THREADS") or "2")
  local n = 0
  for line in io.lines(os.getenv("EVENTS")) do
    if n % k == index then
      local signature, body = line:match("^([^\t]+)\t(.*)$")
      table.insert(events, { signature = signature, body = body })
    end
    n = n + 1
  end
  next_event = 0
end

function request()
  next_event = next_event + 1
  local event = events[next_event]
  if event == nil then
    error("out of signed events: make more (EVENT_COUNT)")
  end
  return wrk.format("POST", "/api/webhooks/stripe",
    { ["Content-Type"] = "application/json", ["Stripe-Signature"] = event.signature }, event.body)
end

function response(status, headers, body)
  if status ~= 200 then failures = failures + 1 end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + thread:get("failures") end
  io.write(string.format("non-200 answers: %d\n", failed))
end
