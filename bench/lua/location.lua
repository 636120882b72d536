-- (b) One random own location: GET /ocpi/2.2.1/cpo/locations/LOCnnnnnnn. args: token, count, seed.
local count

function init(args)
   auth(args[1])
   count = tonumber(args[2])
   math.randomseed(tonumber(args[3]))
end

function request()
   return wrk.format("GET", string.format("/ocpi/2.2.1/cpo/locations/LOC%07d", math.random(count)))
end
