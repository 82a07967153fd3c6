-- wrk script: POST realistic, varied customer messages (Chinese, English, mixed) to the web
-- intake, with a distinct contact on every request so that every message opens a new ticket.
--
--   wrk -t1 -c64 -d10s --latency -s bench/post_message.lua http://127.0.0.1:8080
--
-- Environment: BENCH_CORPUS (default bench/corpus.txt), BENCH_RUN (tag in the contacts),
-- BENCH_PATH (default /api/v1/web/messages).
-- At the end one line `BENCH_JSON {...}` gives the counts and latency percentiles (us).

local corpus = os.getenv("BENCH_CORPUS") or "bench/corpus.txt"
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local path = os.getenv("BENCH_PATH") or "/api/v1/web/messages"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local names, texts = {}, {}
local n, me = 0, 1
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   me = tonumber(tid) or 1
   math.randomseed(os.time() * 1000 + me * 7919)
   local f = assert(io.open(corpus, "r"))
   for line in f:lines() do
      local kind, value = line:match("^([NT])\t(.+)$")
      if kind == "N" then
         table.insert(names, value)
      elseif kind == "T" then
         table.insert(texts, value)
      end
   end
   f:close()
   assert(#names > 0 and #texts > 0, "empty corpus " .. corpus)
end

function request()
   n = n + 1
   local order = string.format("%d%07d", math.random(1000, 9999), math.random(0, 9999999))
   local text = (texts[math.random(#texts)]:gsub("{order}", order))
   local contact
   if n % 2 == 0 then
      contact = string.format("c%s-%d-%d@example.com", run, me, n)
   else
      contact = string.format("+86 13%d %08d", me % 10, n % 100000000)
   end
   local body = '{"name":"' .. names[math.random(#names)] .. '","contact":"' .. contact ..
      '","text":"' .. text .. '"'
   if n % 3 == 0 then
      body = body .. ',"order_id":"' .. order .. '"'
   end
   body = body .. "}"
   return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.status,
      e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end
