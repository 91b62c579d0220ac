-- wrk script: vote.lua at a fixed rate (open loop), for latency at a given load.
--
--   cd loadtest/wrk && wrk -t T -c C -d D -s vote_paced.lua URL -- <first phone> <T> <req/s>
--
-- Each thread sends on an absolute schedule of <req/s> / T per second: a free
-- connection takes the next slot, and a slot missed while the server stalls is
-- sent at once rather than dropped, so a stall shows in the latency instead of
-- silently lowering the load (wrk's delay() alone would pace per connection,
-- after each reply). Keep C well above rate x latency so a connection is free.

dofile("vote.lua")

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } wrk_timespec;
int clock_gettime(int clk_id, wrk_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("wrk_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval, next_slot

function init_pacing(args)
  local rate = tonumber(args[3])
  interval = 1000 * stride / rate -- ms between two sends of this thread
end

function delay()
  local now = now_ms()
  if not next_slot or next_slot < now - 1000 then
    next_slot = now -- start, or a stall of over a second: do not burst to catch up
  end
  local slot = next_slot
  next_slot = next_slot + interval
  local wait = slot - now
  if wait < 0 then
    return 0
  end
  return wait
end

