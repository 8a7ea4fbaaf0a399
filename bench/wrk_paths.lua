-- wrk script for bench/common.py's wrk_load: GET the paths of a file in turn
-- (one per line, given after --), and print the summary as one JSON line.

local paths = {}
local next_path = 0

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
end

function request()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"responses": %d, "seconds": %.6f, "errors": %d, "p50": %.6f, "p99": %.6f}\n',
    summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1e6, latency:percentile(99) / 1e6))
end
