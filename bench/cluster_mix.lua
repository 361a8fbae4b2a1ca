-- Mixed simulator and page traffic for wrk: 60 % reads (the public page, the
-- API's message list), 30 % tweets, 10 % follows, on the users bench1..benchN
-- that bench/cluster.py registers first. N comes from BENCH_USERS.
local users = tonumber(os.getenv("BENCH_USERS") or "20")
local authorization = "Basic c2ltdWxhdG9yOnN1cGVyX3NhZmUh"
local counter = 0

function setup(thread)
  thread:set("offset", math.random(1, 1000000))
end

request = function()
  counter = counter + 1
  local step = counter % 10
  local user = "bench" .. ((counter + (offset or 0)) % users + 1)
  local latest = "?latest=" .. counter
  local headers = {["Authorization"] = authorization, ["Content-Type"] = "application/json"}
  if step < 3 then
    return wrk.format("GET", "/public", headers)
  elseif step < 6 then
    return wrk.format("GET", "/msgs?no=20", headers)
  elseif step < 9 then
    return wrk.format("POST", "/msgs/" .. user .. latest, headers,
                      '{"content": "bench twoot ' .. counter .. '"}')
  else
    local other = "bench" .. ((counter * 7) % users + 1)
    return wrk.format("POST", "/fllws/" .. user .. latest, headers, '{"follow": "' .. other .. '"}')
  end
end
