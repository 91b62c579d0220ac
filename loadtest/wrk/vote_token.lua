-- wrk script: POST /v1/votes in a verified campaign, each voter token casting its
-- day's votes back to back (one per nominee) before the next token takes over.
--
--   cd loadtest/wrk && wrk -t T -c C -d D -s vote_token.lua URL -- <tokens file> <T> <votes per token> <nominees>
--
-- The file holds one token per line (loadtest/bench/verified.py issues them with
-- votesvc's own VoterTokens). Thread i takes tokens i, i + T, i + 2T, ...; a
-- token's votes are spent once, so give every run a fresh file with more
-- tokens than it can use: past the last one it starts over, and those votes
-- come back 409. Nominees are N01..N<nominees>, a token's votes on consecutive
-- ones. done() prints one line "WRK {...}" (JSON) for loadtest/bench/wrk.py.

dofile("report.lua")

local thread_count = 0
index = 0 -- this thread's number, set by setup()
stride = 1 -- the number of threads, from the arguments

function setup(thread)
  thread:set("index", thread_count)
  thread_count = thread_count + 1
end

local tokens = {}
local nominees = {}
local per_token = 10
local n = 0
local head, tail -- the request line and headers around the token, up to Content-Length's value

function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
  stride = tonumber(args[2] or stride)
  per_token = tonumber(args[3] or per_token)
  for i = 1, tonumber(args[4] or 30) do
    nominees[i] = string.format("N%02d", i)
  end
  head = "POST " .. wrk.path .. " HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port
    .. "\r\nContent-Type: application/json\r\nAuthorization: Bearer "
  tail = "\r\nContent-Length: "
end

function request()
  local turn = math.floor(n / per_token) -- this thread's turn-th token
  local vote = n % per_token
  n = n + 1
  local token = tokens[(turn * stride + index) % #tokens + 1]
  local body = '{"nominee":"' .. nominees[(turn * per_token + vote) % #nominees + 1] .. '"}'
  return head .. token .. tail .. #body .. "\r\n\r\n" .. body
end
