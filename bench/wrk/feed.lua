-- GET one path as one of several players, picked at random per request: the friends'
-- feed of the bench's feed viewers (bench/dataset.py). Anything but 200 counts as unexpected.
--   wrk ... -s bench/wrk/feed.lua URL -- PATH AUTHORIZATION[,AUTHORIZATION...]
dofile("bench/wrk/report.lua")

function init(args)
   path, auths = args[1], {}
   for auth in string.gmatch(args[2], "[^,]+") do auths[#auths + 1] = auth end
   unexpected, last_unexpected, sent, stride, base = 0, 0, 0, 0, 0
   math.randomseed(os.time() + 7919 * tid)
end

function request()
   sent = sent + 1
   return wrk.format("GET", path, { Authorization = auths[math.random(1, #auths)] })
end

function response(status, headers, body)
   if status ~= 200 then note_unexpected(status) end
end
