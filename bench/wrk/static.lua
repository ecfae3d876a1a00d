-- One fixed request, repeated: the ceiling, the 409 path (every request on
-- one payout that is already failed), the list pages, the user view.
-- Arguments (see common.lua): method=GET|POST, body=TEXT (optional).
-- The URL's path and query are the request's; headers come from wrk -H.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local bench = require("common")

bench.run(function(opts)
  local headers = bench.headers(opts.body and { ["Content-Type"] = "application/json" } or nil)
  local req = wrk.format(opts.method or "GET", wrk.path, headers, opts.body)
  return function() return req end, req
end)
