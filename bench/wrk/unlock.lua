-- Unlocks with fresh (player, achievement) pairs, one per request or BATCH per request.
-- Thread t of T uses pair sequence numbers BASE + (t + T * i) * BATCH .. + BATCH - 1 for its
-- i-th request, so no pair repeats across threads, requests or runs (bench/dataset.py):
-- player FIRST + s % SPAN, achievement PRELOADED + s // SPAN.
-- A single unlock must answer 201; a batch 200 with "created" equal to BATCH.
--   wrk ... -s bench/wrk/unlock.lua URL -- PATH KEY BASE FIRST SPAN PRELOADED THREADS BATCH
dofile("bench/wrk/report.lua")

function init(args)
   path = args[1]
   wrk.headers["Authorization"] = "Api-Key " .. args[2]
   wrk.headers["Content-Type"] = "application/json"
   base, first, span, preloaded = tonumber(args[3]), tonumber(args[4]), tonumber(args[5]), tonumber(args[6])
   nthreads, batch = tonumber(args[7]), tonumber(args[8])
   stride = batch
   unexpected, last_unexpected, sent = 0, 0, 0
end

local function item(s)
   local n = first + s % span
   local a = preloaded + math.floor(s / span)
   return string.format('{"player_id": "00000000-0000-4000-8000-%012x", "achievement": "a%03d"}', n, a)
end

function request()
   local s = base + (tid + nthreads * sent) * batch
   sent = sent + 1
   local body
   if batch == 1 then
      body = item(s)
   else
      local items = {}
      for k = 0, batch - 1 do items[#items + 1] = item(s + k) end
      body = '{"unlocks": [' .. table.concat(items, ", ") .. "]}"
   end
   return wrk.format("POST", path, nil, body)
end

function response(status, headers, body)
   if batch == 1 then
      if status ~= 201 then note_unexpected(status) end
   else
      local created = tonumber(string.match(body, '"created"%s*:%s*(%d+)'))
      if status ~= 200 or created ~= batch then note_unexpected(status) end
   end
end
