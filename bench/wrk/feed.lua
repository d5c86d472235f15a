-- GET one path as one of several players, picked at random per request: the friends'
-- feed of the bench's feed viewers (bench/dataset.py). With QUERIES, each player's own
-- query string (the n-th for the n-th player: a cursor to a later page). Anything but
-- 200 counts as unexpected.
--   wrk ... -s bench/wrk/feed.lua URL -- PATH AUTHORIZATION[,AUTHORIZATION...] [QUERY,...]
dofile("bench/wrk/report.lua")

function init(args)
   path, auths, queries = args[1], {}, {}
   for auth in string.gmatch(args[2], "[^,]+") do auths[#auths + 1] = auth end
   for query in string.gmatch(args[3] or "", "[^,]+") do queries[#queries + 1] = query end
   unexpected, last_unexpected, sent, stride, base = 0, 0, 0, 0, 0
   math.randomseed(os.time() + 7919 * tid)
end

function request()
   sent = sent + 1
   local n = math.random(1, #auths)
   return wrk.format("GET", path .. (queries[n] or ""), { Authorization = auths[n] })
end

function response(status, headers, body)
   if status ~= 200 then note_unexpected(status) end
end
