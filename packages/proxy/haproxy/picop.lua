-- PiCoP on HAProxy: a tcp-request content action that reads the PiCoP header at the front of each
-- connection, removes it (or keeps it, with propagate), and sets where HAProxy relays the
-- connection; HAProxy then relays natively. Loaded by the configuration `picop-haproxy` prints,
-- which gives its settings as PICOP_HAPROXY_* environment variables (`setenv`) and calls the
-- fetch `lua.picop_need` and the actions `lua.picop` and `lua.picop_incomplete` in the frontend.
-- The header's rules are @picop/codec's.

local SIGNATURE = "\r\n\r\n\0\r\nQUIT\n"

-- The settings, from the environment the generated configuration gives HAProxy (`setenv`).
local function param(name, default)
  local value = os.getenv("PICOP_HAPROXY_" .. name)
  if value == nil or value == "" then return default end
  return value
end

local MODE = param("HEADER", "required")
local DIALECT = param("DIALECT", "spec")
local FIELD = param("FIELD", "Env-Id"):lower()
local MAX_BYTES = tonumber(param("MAX_HEADER_BYTES", DIALECT == "picop-go" and "255" or "4096"))
local PROPAGATE = param("PROPAGATE", "false") == "true"
local ROUTES_FILE = param("ROUTES_FILE", "")
local DEFAULT_ROUTE = param("DEFAULT", "")
local STATIC_ROUTES = param("ROUTES", "")

-- picop-proxy's counters, by the same names, served by the `picop-metrics` service:
-- accepted[env], failed[env][reason] (env: an Env-Id with a route, _default, _plain, _unknown).
local accepted, failed = {}, {}
local reloads, reload_failures = 0, 0

local function accept(env)
  accepted[env] = (accepted[env] or 0) + 1
end

local function refuse(reason)
  accept("_unknown")
  failed["_unknown"] = failed["_unknown"] or {}
  failed["_unknown"][reason] = (failed["_unknown"][reason] or 0) + 1
  return act.DENY
end

local json_null = {}

-- A small JSON reader: enough for routes files ({"env": "host:port"} or the Go reference's
-- [{"env_id": ..., "destination": ...}]). Returns nil and a message on malformed input.
local function json_decode(text)
  local pos = 1
  local function fail(what) error({ json = what .. " at " .. pos }) end
  local function skip() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local function string_()
    local out, i = {}, pos + 1
    while true do
      local c = text:sub(i, i)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = i + 1; return table.concat(out) end
      if c == "\\" then
        local e = text:sub(i + 1, i + 1)
        local map = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
        if map[e] then out[#out + 1] = map[e]; i = i + 2
        elseif e == "u" then
          local code = tonumber(text:sub(i + 2, i + 5), 16)
          if code == nil then fail("bad escape") end
          out[#out + 1] = utf8.char(code); i = i + 6
        else fail("bad escape") end
      else out[#out + 1] = c; i = i + 1 end
    end
  end
  value = function()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1; skip()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return obj end
      while true do
        skip()
        if text:sub(pos, pos) ~= '"' then fail("expected a key") end
        local key = string_()
        skip()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        obj[key] = value()
        skip()
        local d = text:sub(pos, pos); pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local arr = {}
      pos = pos + 1; skip()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return arr end
      while true do
        arr[#arr + 1] = value()
        skip()
        local d = text:sub(pos, pos); pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then return string_()
    else
      local literal = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if literal and #literal > 0 then pos = pos + #literal; return tonumber(literal) end
      for word, v in pairs({ ["true"] = true, ["false"] = false, ["null"] = json_null }) do
        if text:sub(pos, pos + #word - 1) == word then pos = pos + #word; return v end
      end
      fail("unexpected input")
    end
  end
  local ok, result = pcall(function()
    local v = value(); skip()
    if pos <= #text then fail("trailing input") end
    return v
  end)
  if ok then return result end
  if type(result) == "table" and result.json then return nil, result.json end
  return nil, tostring(result)
end

-- "host:port", "[v6]:port": host, port and whether the host is an IP address (else a name for
-- HAProxy's resolver), or nil.
local function parse_address(text)
  if type(text) ~= "string" then return nil end
  local host, port = text:match("^%[(.+)%]:(%d+)$")
  if not host then host, port = text:match("^([^:]+):(%d+)$") end
  port = tonumber(port)
  if not host or not port or port < 1 or port > 65535 then return nil end
  return { host = host, port = port, ip = host:match("^[%d.]+$") ~= nil or host:find(":", 1, true) ~= nil }
end

-- The Env-Id rule of @picop/codec: visible ASCII, no space.
local function valid_env_id(id)
  return #id >= 1 and #id <= 4089 and id:match("^[!-~]+$") ~= nil
end

-- Routes: a table parsed from the file's text, or nil and why.
local function parse_routes(text)
  local data, err = json_decode(text)
  if data == nil then return nil, err end
  if type(data) ~= "table" then return nil, "not an object or array" end
  local routes = {}
  if data[1] ~= nil or next(data) == nil then
    for _, entry in ipairs(data) do
      local address = type(entry) == "table" and parse_address(entry.destination)
      if type(entry) ~= "table" or type(entry.env_id) ~= "string" or not address then
        return nil, "bad entry"
      end
      routes[entry.env_id] = address
    end
  end
  for env, destination in pairs(data) do
    if type(env) == "string" then
      local address = parse_address(destination)
      if not address or not valid_env_id(env) then return nil, "bad route for " .. env end
      routes[env] = address
    end
  end
  return routes
end

local routes = {}
local default_route = parse_address(DEFAULT_ROUTE)

if STATIC_ROUTES ~= "" then
  for pair in STATIC_ROUTES:gmatch("[^,]+") do
    local env, destination = pair:match("^([^=]+)=(.+)$")
    routes[env] = parse_address(destination)
  end
end

-- The routes file, read at start and again whenever its text changes (a ConfigMap's symlink swap
-- included: the path is opened anew each time). Returns "changed" and the routes, "same", or
-- "bad" and why.
local last_text = false
local function read_routes_file()
  local file, err = io.open(ROUTES_FILE, "r")
  local text = file and file:read("a")
  if file then file:close() end
  if text == last_text then return "same" end
  last_text = text
  if text == nil then return "bad", err end
  local parsed, why = parse_routes(text)
  if parsed == nil then return "bad", why end
  return "changed", parsed
end

if ROUTES_FILE ~= "" then
  -- As picop-proxy: no start on a file it cannot use.
  local outcome, result = read_routes_file()
  if outcome ~= "changed" then
    error("picop: routes file " .. ROUTES_FILE .. " refused: " .. tostring(result))
  end
  routes = result
  -- Re-read each second; an unreadable or invalid file keeps the last good routes, counted.
  core.register_task(function()
    while true do
      core.sleep(1)
      local outcome, result = read_routes_file()
      if outcome == "changed" then
        routes = result
        reloads = reloads + 1
      elseif outcome == "bad" then
        reload_failures = reload_failures + 1
        core.Warning("picop: routes file " .. ROUTES_FILE .. " ignored (" .. tostring(result) .. "): keeping the last good routes")
      end
    end
  end)
end

-- Sets where the connection goes: the variables the generated configuration reads. `env_id` nil:
-- a plain client (optional mode).
local function route(txn, env_id, plain)
  local routed = env_id and routes[env_id]
  local destination = routed or default_route
  local label = routed and env_id or (plain and "_plain" or "_default")
  if destination == nil then
    accept(label)
    failed[label] = failed[label] or {}
    failed[label].no_route = (failed[label].no_route or 0) + 1
    return act.DENY
  end
  accept(label)
  if destination.ip then
    txn:set_var("txn.picop_ip", destination.host)
  else
    txn:set_var("txn.picop_host", destination.host)
  end
  txn:set_var("txn.picop_port", destination.port)
  return act.CONTINUE
end

-- The header's fixed part: 15 bytes, 14 in the picop-go dialect (a 1-byte length).
local FIXED = DIALECT == "picop-go" and 14 or 15

-- The connection's first bytes, up to the header's fixed part (one copy out of the buffer), and
-- how many have arrived.
local function head_of(channel)
  local have = channel:input()
  return channel:data(0, math.min(have, FIXED)) or "", have
end

-- Whether `head` is (so far) the signature: decided at its first differing byte.
local function signed(head)
  local n = math.min(#head, #SIGNATURE)
  return head:sub(1, n) == SIGNATURE:sub(1, n)
end

-- The context's length, from the fixed part.
local function context_length(head)
  if DIALECT == "picop-go" then return head:byte(14) end
  return head:byte(14) * 256 + head:byte(15)
end

-- How many bytes the connection's header needs, from what has arrived (HAProxy waits until the
-- request holds that many, or the inspect delay ends, before the action runs): 0 once it can be
-- decided (a complete header, a client without one, a header that is bad or too large).
core.register_fetches("picop_need", function(txn)
  local head, have = head_of(txn.req)
  if not signed(head) then return 0 end
  if have < FIXED then return FIXED end
  local length = context_length(head)
  if length > MAX_BYTES or have >= FIXED + length then return 0 end
  return FIXED + length
end)

-- A connection whose header did not arrive whole: the client closed, or the inspect delay (the
-- header timeout) ended. In optional mode a client that closed having sent nothing is a plain one
-- (connected, its close passed on).
core.register_action("picop_incomplete", { "tcp-req" }, function(txn)
  if txn.req:may_recv() then return refuse("timeout") end
  if MODE == "optional" and txn.req:input() == 0 then return route(txn, nil, true) end
  return refuse("truncated")
end)

core.register_action("picop", { "tcp-req" }, function(txn)
  local channel = txn.req
  local head, have = head_of(channel)
  -- Not the signature: optional mode sends such a client to the default route untouched.
  if not signed(head) then
    if MODE == "optional" then return route(txn, nil, true) end
    return refuse("signature")
  end
  if have < FIXED then return refuse("truncated") end
  if head:byte(13) ~= 1 then return refuse("version") end
  local length = context_length(head)
  if length > MAX_BYTES then return refuse("too_large") end
  if have < FIXED + length then return refuse("truncated") end
  local env_id = nil
  if length > 0 then
    local seen = {}
    for field in (channel:data(FIXED, length) .. "\r\n"):gmatch("(.-)\r\n") do
      local name, value = field:match("^([!#$%%&'*+.^_`|~%w-]+):([ \t!-~]*)$")
      if name == nil then return refuse("syntax") end
      if seen[name:lower()] then return refuse("duplicate_field") end
      seen[name:lower()] = true
      if name:lower() == FIELD then env_id = value end
    end
  end
  if not PROPAGATE then channel:remove(0, FIXED + length) end
  return route(txn, env_id, false)
end)

-- The counters in Prometheus's text format (HAProxy's own exporter serves its own).
core.register_service("picop-metrics", "http", function(applet)
  local lines = {
    "# HELP picop_proxy_connections_accepted_total Connections accepted, by Env-Id route.",
    "# TYPE picop_proxy_connections_accepted_total counter",
  }
  for env, n in pairs(accepted) do
    lines[#lines + 1] = string.format('picop_proxy_connections_accepted_total{env="%s"} %d', env, n)
  end
  lines[#lines + 1] = "# HELP picop_proxy_connections_failed_total Connections closed on an error, by reason."
  lines[#lines + 1] = "# TYPE picop_proxy_connections_failed_total counter"
  for env, reasons in pairs(failed) do
    for reason, n in pairs(reasons) do
      lines[#lines + 1] = string.format('picop_proxy_connections_failed_total{env="%s",reason="%s"} %d', env, reason, n)
    end
  end
  lines[#lines + 1] = "# TYPE picop_proxy_routes_reloads_total counter"
  lines[#lines + 1] = string.format("picop_proxy_routes_reloads_total %d", reloads)
  lines[#lines + 1] = "# TYPE picop_proxy_routes_reload_failures_total counter"
  lines[#lines + 1] = string.format("picop_proxy_routes_reload_failures_total %d", reload_failures)
  local body = table.concat(lines, "\n") .. "\n"
  applet:set_status(200)
  applet:add_header("content-type", "text/plain; version=0.0.4")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end)
