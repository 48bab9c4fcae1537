-- wrk script: unique signups, each from its own forwarded address (for an
-- api with CLIENT_IP_HEADER=X-Forwarded-For, so a signup limit counts every
-- request and refuses none), and the Server-Timing breakdown of each answer
-- (argon2_queue = waiting for a free core, argon2 = hashing, db = the
-- transaction, enqueue = commit to response).

local threads = {}

function setup(thread)
  thread:set("tag", tostring(#threads) .. "-" .. tostring(os.time()))
  thread:set("net", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  failures = 0
  argon2_queue, argon2, db, enqueue = {}, {}, {}, {}
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"email":"bench-%s-%d@example.com","password":"correct horse battery","name":"Bench %d"}',
    tag, counter, counter)
  local client = string.format("10.%d.%d.%d", net, math.floor(counter / 256) % 256, counter % 256)
  return wrk.format("POST", "/api/signup",
    { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = client }, body)
end

function response(status, headers, body)
  if status ~= 201 then failures = failures + 1 end
  local timing = headers["server-timing"] or headers["Server-Timing"]
  if timing then
    table.insert(argon2_queue, tonumber(timing:match("argon2_queue;dur=([%d%.]+)")))
    table.insert(argon2, tonumber(timing:match("[^_]argon2;dur=([%d%.]+)")))
    table.insert(db, tonumber(timing:match("db;dur=([%d%.]+)")))
    table.insert(enqueue, tonumber(timing:match("enqueue;dur=([%d%.]+)")))
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  local index = math.max(1, math.ceil(#sorted * p))
  return sorted[index]
end

function done(summary, latency, requests)
  local all = { argon2_queue = {}, argon2 = {}, db = {}, enqueue = {} }
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
    for name, samples in pairs(all) do
      for _, value in ipairs(thread:get(name)) do table.insert(samples, value) end
    end
  end
  io.write(string.format("non-201 answers: %d\n", failed))
  io.write("server-side breakdown (ms)      p50      p99\n")
  for _, name in ipairs({ "argon2_queue", "argon2", "db", "enqueue" }) do
    local samples = all[name]
    table.sort(samples)
    io.write(string.format("  %-28s %7.3f  %7.3f\n", name, percentile(samples, 0.5), percentile(samples, 0.99)))
  end
end
