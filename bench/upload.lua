-- wrk script: POST /api/photos with the JPEG at $PHOTO as multipart field
-- `photo`, bearer $TOKEN; counts answers other than 202.

local boundary = "acme-bench-7MA4YWxkTrZu0gW"
local file = assert(io.open(os.getenv("PHOTO"), "rb"))
local photo = file:read("*a")
file:close()
local body = "--" .. boundary .. "\r\n"
  .. 'content-disposition: form-data; name="photo"; filename="photo.jpg"\r\n'
  .. "content-type: image/jpeg\r\n\r\n" .. photo .. "\r\n--" .. boundary .. "--\r\n"
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("TOKEN"),
  ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
}

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  failures = 0
end

function request()
  return wrk.format("POST", "/api/photos", headers, body)
end

function response(status, headers, body)
  if status ~= 202 then failures = failures + 1 end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + thread:get("failures") end
  io.write(string.format("non-202 answers: %d (photo: %d bytes)\n", failed, #photo))
end
