-- The 200 path: POST .../payouts/{id}/failed, each request on a payout no
-- request has touched before. ids=FILE holds unused payout ids, one a line;
-- each thread takes every nthreads-th line from its own index, so no id is
-- used twice. path=TEMPLATE has {id} where the id goes; body=TEXT.
-- Run with drain= (see common.lua), so the counted 200s can be checked
-- against the database after the run.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local bench = require("common")

bench.run(function(opts, index, nthreads)
  local ids = bench.stripe(opts.ids, index, nthreads)
  local headers = bench.headers({ ["Content-Type"] = "application/json" })
  local reqs = {}
  for i, id in ipairs(ids) do
    reqs[i] = wrk.format("POST", (opts.path:gsub("{id}", id)), headers, opts.body)
  end
  local n = 0
  local sample = reqs[1] or wrk.format("POST", (opts.path:gsub("{id}", "none")), headers, opts.body)
  return function()
    n = n + 1
    return reqs[n]
  end, sample
end)
