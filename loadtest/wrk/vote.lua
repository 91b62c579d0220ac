-- wrk script: POST /v1/votes, every request from a new phone (so each is a 201).
--
--   cd loadtest/wrk && wrk -t T -c C -d D -s vote.lua URL -- <first phone> <T>
--
-- Phones are <first phone> + n * T + thread index, so threads never share one;
-- give every run its own range. vote_paced.lua adds a send schedule.
-- done() prints one line "WRK {...}" (JSON) for loadtest/bench/wrk.py.

dofile("report.lua")

local thread_count = 0
index = 0 -- this thread's number, set by setup()
stride = 1 -- the number of threads, from the arguments

function setup(thread)
  thread:set("index", thread_count)
  thread_count = thread_count + 1
end

local nominees = {}
for i = 1, 30 do
  nominees[i] = string.format("N%02d", i)
end

local first_phone = 13000000000
local n = 0
local head -- the request line and headers up to the Content-Length value

function init(args)
  first_phone = tonumber(args[1] or first_phone)
  stride = tonumber(args[2] or stride)
  -- Built once: wrk.format() per request would cost wrk more CPU than the body.
  head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port
    .. "\r\nContent-Type: application/json\r\nContent-Length: "
  if init_pacing then
    init_pacing(args)
  end
end

function request()
  n = n + 1
  local phone = first_phone + n * stride + index
  local body = '{"nominee":"' .. nominees[n % 30 + 1] .. '","phone":"'
    .. string.format("%.0f", phone) .. '"}'
  return head .. #body .. "\r\n\r\n" .. body
end
