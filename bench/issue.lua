-- issue.lua — wrk script: POST /v1/invoices with a unique Idempotency-Key.
--
--   wrk -t2 -c64 -d15s --latency -s bench/issue.lua https://127.0.0.1:PORT/v1/invoices \
--       -- TOKEN BODY_FILE RUN_ID
--
-- Arguments after "--" (each may instead come from the environment):
--   TOKEN      access token           (FAPIAO_TOKEN)
--   BODY_FILE  invoice JSON to send   (FAPIAO_BODY, default examples/invoice.json)
--   RUN_ID     makes keys unique across runs (FAPIAO_RUN_ID, default time + random)
-- Key = w<RUN_ID>-<thread>-<counter>: unique per request, never reused by a
-- rerun.  Only [A-Za-z0-9_.:-], at most 64 characters.
--
-- done() prints the statuses seen (anything but 201 is counted as an error)
-- and one machine-readable line:
--   wrk_result requests=.. duration_s=.. rps=.. created=.. non201=.. socket_errors=..
--              p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
-- wrk is closed-loop: its latencies are per-connection service times and do
-- not include the wait a constant-rate client would see (use ratebench for that).

local threads = {}
local next_id = 0

local function urandom_hex(n)
  local f = io.open("/dev/urandom", "rb")
  if not f then return string.format("%06x", math.random(0, 0xffffff)) end
  local s = f:read(n)
  f:close()
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- main state: number the threads and hand them one run id
local run_id = os.getenv("FAPIAO_RUN_ID")
function setup(thread)
  if not run_id or run_id == "" then
    run_id = string.format("%x", os.time()) .. urandom_hex(4)
  end
  next_id = next_id + 1
  thread:set("tid", next_id)
  thread:set("default_run_id", run_id)
  table.insert(threads, thread)
end

-- thread states
local token, body, headers, prefix
local counter = 0
statuses = {}
created = 0
non201 = 0

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then
    io.stderr:write("issue.lua: cannot open body file: " .. tostring(err) .. "\n")
    os.exit(2)
  end
  local s = f:read("*a")
  f:close()
  return s
end

function init(args)
  token = args[1] or os.getenv("FAPIAO_TOKEN")
  local body_path = args[2] or os.getenv("FAPIAO_BODY") or "examples/invoice.json"
  local rid = args[3] or os.getenv("FAPIAO_RUN_ID") or default_run_id
  if not token or token == "" then
    io.stderr:write("issue.lua: no token (argument 1 or FAPIAO_TOKEN)\n")
    os.exit(2)
  end
  if not rid:match("^[A-Za-z0-9_.:-]+$") or #rid > 40 then
    io.stderr:write("issue.lua: run id must be 1-40 of [A-Za-z0-9_.:-]\n")
    os.exit(2)
  end
  body = read_all(body_path)
  prefix = "w" .. rid .. "-" .. tostring(tid) .. "-"
  headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }
end

function request()
  counter = counter + 1
  headers["Idempotency-Key"] = prefix .. counter
  return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, resp_body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 then
    created = created + 1
  else
    non201 = non201 + 1
    if non201 <= 3 then
      io.stderr:write(string.format("issue.lua: HTTP %d: %s\n", status,
                                    string.sub(resp_body or "", 1, 300)))
    end
  end
end

function done(summary, latency, requests)
  local total_created, total_non201, all = 0, 0, {}
  for _, t in ipairs(threads) do
    total_created = total_created + (t:get("created") or 0)
    total_non201 = total_non201 + (t:get("non201") or 0)
    local st = t:get("statuses") or {}
    for code, n in pairs(st) do all[code] = (all[code] or 0) + n end
  end
  local codes = {}
  for code in pairs(all) do table.insert(codes, code) end
  table.sort(codes)
  local parts = {}
  for _, code in ipairs(codes) do
    table.insert(parts, string.format("%d:%d", code, all[code]))
  end
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  local dur = summary.duration / 1e6
  io.write(string.format("issue.lua: statuses %s; non-201 responses: %d; socket errors: "
                         .. "connect %d read %d write %d timeout %d\n",
                         #parts > 0 and table.concat(parts, " ") or "none", total_non201,
                         e.connect, e.read, e.write, e.timeout))
  io.write(string.format("wrk_result requests=%d duration_s=%.3f rps=%.1f created=%d "
                         .. "non201=%d socket_errors=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
                         .. "max_ms=%.3f\n",
                         summary.requests, dur, summary.requests / dur, total_created,
                         total_non201, socket_errors, latency:percentile(50) / 1e3,
                         latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
                         latency.max / 1e3))
end
