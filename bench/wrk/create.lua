-- The create path: POST .../payouts, each request a new payout, for users
-- taken in turn so that no user's balance check waits on another's.
-- users=N: the users are prefix .. 1 to N (prefix=TEXT, zero-padded to
-- five digits), each credited beforehand with more than the run can ask;
-- each thread takes every nthreads-th user from its own index and cycles
-- through them. amount=TEXT, currency=TEXT. path is the URL's.
-- Run with drain= (see common.lua), so the counted 201s can be checked
-- against the database after the run.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local bench = require("common")

bench.run(function(opts, index, nthreads)
  local headers = bench.headers({ ["Content-Type"] = "application/json" })
  local reqs = {}
  for i = index + 1, tonumber(opts.users), nthreads do
    local body = bench.encode({
      user_id = string.format("%s%05d", opts.prefix, i), amount = opts.amount,
      currency = opts.currency, destination = "bench-wallet",
    })
    reqs[#reqs + 1] = wrk.format("POST", wrk.path, headers, body)
  end
  local n = 0
  return function()
    n = n % #reqs + 1
    return reqs[n]
  end, reqs[1]
end)
