-- (a1) Link-following pages: the chain of Link URLs was collected by run.py in one pass (first page, then every
-- rel="next" URL the platform wrote); they are replayed round-robin. args: token, file of paths.
local paths = {}
local i = 0

function init(args)
   auth(args[1])
   for line in io.lines(args[2]) do
      if line ~= "" then table.insert(paths, line) end
   end
end

function request()
   i = i % #paths + 1
   return wrk.format("GET", paths[i])
end
