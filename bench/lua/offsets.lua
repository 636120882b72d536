-- (a2) Pages at random offsets, no cursor: ?offset=X&limit=L. args: token, total, limit, seed.
local total, limit

function init(args)
   auth(args[1])
   total = tonumber(args[2])
   limit = tonumber(args[3])
   math.randomseed(tonumber(args[4]))
end

function request()
   local offset = math.random(0, math.max(0, total - limit))
   return wrk.format("GET", "/ocpi/2.2.1/cpo/locations?offset=" .. offset .. "&limit=" .. limit)
end
