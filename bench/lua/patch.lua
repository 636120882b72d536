-- (c) PATCH of an EVSE status into the eMSP receiver, for a random EVSE of the bench partner's locations.
-- Every PATCH carries a fresh last_updated: base_ms + a counter (ms), so no write is older than the stored one.
-- args: token, file of "location/evse" paths, URL prefix, base_ms, seed.
local paths = {}
local base = 0
local n = 0
local statuses = { "AVAILABLE", "CHARGING", "BLOCKED", "AVAILABLE", "OUTOFORDER", "CHARGING" }

function init(args)
   auth(args[1])
   for line in io.lines(args[2]) do
      if line ~= "" then table.insert(paths, args[3] .. line) end
   end
   base = tonumber(args[4])
   math.randomseed(tonumber(args[5]))
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   n = n + 1
   local ms = base + n
   local stamp = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(ms / 1000)) .. string.format(".%03dZ", ms % 1000)
   local body = '{"status":"' .. statuses[n % #statuses + 1] .. '","last_updated":"' .. stamp .. '"}'
   return wrk.format("PATCH", paths[math.random(#paths)], nil, body)
end
