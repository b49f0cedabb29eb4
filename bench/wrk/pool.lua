-- Cycles through pre-built raw HTTP requests (written by bench/pools.py) and prints a JSON
-- summary. Usage: wrk -s bench/wrk/pool.lua URL -- POOL_FILE
-- Every thread gets its own list (pool[thread id]) so threads never send the same request.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

local requests
local index = 0

function init(args)
   local pool = dofile(args[1])
   requests = pool[tid]
   if requests == nil or #requests == 0 then
      error("pool file has no requests for thread " .. tostring(tid))
   end
end

function request()
   index = index + 1
   if index > #requests then
      index = 1
   end
   return requests[index]
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      '\nBENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
      '"non2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
      '"timeouts": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
