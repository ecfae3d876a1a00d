-- What every benchmark script shares: timing, status counting, the stop
-- rule, and one machine-readable line of results for bench/run.py.
--
-- Arguments (after wrk's `--`), as key=value:
--   duration=S   seconds of load, from each thread's first request
--   limit=N      or: stop each thread after N counted responses
--   nthreads=T   wrk's -t, so scripts can split their id lists per thread
--   drain=PATH   a path answering 405 at no cost (GET on a POST route).
--                With it, once the duration is over a thread sends only
--                that request, and stops once every other request it sent
--                has been answered: a write is never cut off in flight, so
--                the database can be checked against the statuses counted.
--   others are the script's own (method, body, ids, ...)
--
-- wrk's own duration (-d) must be longer than duration=: it is only the
-- safety net (see stop() below). Throughput is counted here, per thread, as responses over
-- the time from the thread's first request to its stop.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local M = {}

function M.now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

function M.parse_args(args)
  local opts = {}
  for _, arg in ipairs(args) do
    local key, value = arg:match("^([%w_]+)=(.*)$")
    if not key then error("bench: argument is not key=value: " .. arg) end
    opts[key] = value
  end
  return opts
end

-- Lines of a file, keeping those of this thread's stripe (every n-th line
-- from its index): threads never share an id.
function M.stripe(path, index, n)
  local lines, i = {}, 0
  for line in io.lines(path) do
    if line ~= "" then
      if i % n == index then lines[#lines + 1] = line end
      i = i + 1
    end
  end
  return lines
end

-- wrk.format replaces wrk.headers (the -H ones) by the table it is given:
-- this is them plus extra.
function M.headers(extra)
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  for name, value in pairs(extra or {}) do headers[name] = value end
  return headers
end

local function encode(value)
  local kind = type(value)
  if kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then return "null" end
    return string.format("%.17g", value)
  elseif kind == "boolean" then
    return tostring(value)
  elseif kind == "string" then
    return '"' .. value:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif kind == "table" then
    local parts = {}
    if #value > 0 then
      for _, item in ipairs(value) do parts[#parts + 1] = encode(item) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for key, item in pairs(value) do parts[#parts + 1] = encode(tostring(key)) .. ":" .. encode(item) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end
M.encode = encode

-- Installs wrk's globals. `prepare(opts, index, nthreads)` runs in each
-- thread's init and returns a function giving the next request string, or
-- nil when the script has no more (its ids are used up), and one sample
-- request string.
--
-- wrk calls request() once more than it sends, before the first thread
-- starts, to check the request parses (script_verify_request, thread 0
-- only): that call gets the sample, and consumes nothing.
function M.run(prepare)
  local threads = {}

  function setup(thread)
    thread:set("thread_index", #threads)
    threads[#threads + 1] = thread
  end

  function init(args)
    opts = M.parse_args(args)
    duration = tonumber(opts.duration)
    limit = tonumber(opts.limit)
    nthreads = tonumber(opts.nthreads or "1")
    next_request, sample_request = prepare(opts, thread_index, nthreads)
    verifying = thread_index == 0
    drain_request = opts.drain and wrk.format("GET", opts.drain, M.headers(), nil) or nil
    statuses, sent, answered, drained = {}, 0, 0, 0
    draining, stopped, exhausted = false, false, false
    t_start, t_stop = nil, nil
  end

  local function over()
    if limit then return answered >= limit end
    return M.now() >= t_start + duration
  end

  -- bench/run.py counts these lines and then interrupts wrk (SIGINT), so a
  -- run ends when its threads are done, not when wrk's -d runs out: a
  -- stopped thread leaves connections open that would hold workers.
  local function stop()
    stopped, t_stop = true, M.now()
    io.write("BENCH-STOPPED " .. thread_index .. "\n")
    io.flush()
    wrk.thread:stop()
  end

  function request()
    if verifying then
      verifying = false
      return sample_request
    end
    if not t_start then t_start = M.now() end
    if not draining and drain_request then
      if over() then
        draining = true
      end
    end
    if not draining then
      local req = next_request()
      if req then
        sent = sent + 1
        return req
      end
      if not drain_request then error("bench: requests used up and no drain= path") end
      exhausted = true
      draining = true
    end
    return drain_request
  end

  function response(status, headers, body)
    if stopped then return end
    if draining and drain_request and status == 405 then
      drained = drained + 1
    else
      answered = answered + 1
      local key = tostring(status)
      statuses[key] = (statuses[key] or 0) + 1
    end
    if opts.drain or exhausted then
      if draining and answered == sent then stop() end
    elseif over() then
      stop()
    end
  end

  function done(summary, latency, requests)
    local report = {
      summary = {
        requests = summary.requests, duration_us = summary.duration, bytes = summary.bytes,
        errors = {
          connect = summary.errors.connect, read = summary.errors.read, write = summary.errors.write,
          status = summary.errors.status, timeout = summary.errors.timeout,
        },
      },
      latency_us = {
        p50 = latency:percentile(50), p90 = latency:percentile(90), p99 = latency:percentile(99),
        p999 = latency:percentile(99.9), max = latency.max, mean = latency.mean,
      },
      threads = {},
    }
    for _, thread in ipairs(threads) do
      local t_start, t_stop = thread:get("t_start"), thread:get("t_stop")
      report.threads[#report.threads + 1] = {
        index = thread:get("thread_index"),
        statuses = thread:get("statuses") or {},
        sent = thread:get("sent"), answered = thread:get("answered"), drained = thread:get("drained"),
        exhausted = thread:get("exhausted"), stopped = thread:get("stopped"),
        writes_sent = thread:get("writes_sent"),
        elapsed = (t_start and t_stop) and (t_stop - t_start) or -1,
      }
    end
    io.write("BENCH-RESULT " .. encode(report) .. "\n")
  end
end

return M
