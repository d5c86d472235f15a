-- GET one path, or a path for a random public player: "{player}" in the path becomes
-- the id of a player n with n % 10 ~= 0 (bench/dataset.py: anonymous callers may read only
-- public players). Anything but 200 counts as unexpected.
--   wrk ... -s bench/wrk/get.lua URL -- PATH PLAYERS [AUTHORIZATION]
dofile("bench/wrk/report.lua")

function init(args)
   path, players = args[1], tonumber(args[2])
   if args[3] and args[3] ~= "" then wrk.headers["Authorization"] = args[3] end
   unexpected, last_unexpected, sent, stride, base = 0, 0, 0, 0, 0
   math.randomseed(os.time() + 7919 * tid)
end

function request()
   sent = sent + 1
   if players == 0 then return wrk.format("GET", path) end
   local n = math.random(1, players)
   if n % 10 == 0 then n = n - 1 end
   return wrk.format("GET", (string.gsub(path, "{player}", string.format("00000000-0000-4000-8000-%012x", n))))
end

function response(status, headers, body)
   if status ~= 200 then note_unexpected(status) end
end
