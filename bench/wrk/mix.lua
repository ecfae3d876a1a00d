-- A mix of every route, for the worker-memory run: cycles through the
-- requests of requests=FILE (lines "METHOD PATH", a POST sent with body=),
-- and after each cycle one mark-failed on a fresh payout from ids=FILE
-- (path=TEMPLATE with {id}). Stop with limit=N; run with drain=.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local bench = require("common")

bench.run(function(opts, index, nthreads)
  local headers = bench.headers({ ["Content-Type"] = "application/json" })
  local cycle = {}
  for line in io.lines(opts.requests) do
    local method, path = line:match("^(%u+) (%S+)$")
    if method then
      cycle[#cycle + 1] = wrk.format(method, path, headers, method == "POST" and opts.body or nil)
    end
  end
  local ids = bench.stripe(opts.ids, index, nthreads)
  local n = 0
  writes_sent = 0 -- a global: reported per thread, so the run can be checked
  return function()
    n = n + 1
    if n % (#cycle + 1) == 0 then
      local id = ids[writes_sent + 1]
      if not id then return nil end
      writes_sent = writes_sent + 1
      return wrk.format("POST", (opts.path:gsub("{id}", id)), headers, opts.body)
    end
    return cycle[n % (#cycle + 1)]
  end, cycle[1]
end)
