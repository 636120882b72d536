-- Shared by every scenario (bench/run.py puts it in front of the scenario's script).
-- Counts answers that are not HTTP 200 with OCPI status 1000, and prints one JSON line for run.py.
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

bad = 0

function auth(token)
   wrk.headers["Authorization"] = "Token " .. token
end

function response(status, headers, body)
   if status ~= 200 or not string.find(body, '"status_code":1000', 1, true) then
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   local total_bad = 0
   for _, thread in ipairs(threads) do
      total_bad = total_bad + thread:get("bad")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,' ..
      '"max_us":%.1f,"mean_us":%.1f,"bad":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
      '"status_errors":%d,"timeouts":%d}\n',
      summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean, total_bad, e.connect, e.read, e.write, e.status, e.timeout))
end
