-- Shared by the bench's wrk scripts (loaded with dofile, wrk runs from the repository root).
-- Each thread counts answers that were not what the script expected in `unexpected` and
-- the requests it generated in `sent`; done() prints one machine-readable line for
-- bench/wrk.py: throughput, wrk's latency percentiles (p95 too, which --latency lacks),
-- every kind of error, and `next`, the first pair sequence number no thread used.

threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function note_unexpected(status)
   unexpected = unexpected + 1
   last_unexpected = status
end

function done(summary, latency, requests)
   local unexpected_total, last_status, most_sent = 0, 0, 0
   for _, thread in ipairs(threads) do
      unexpected_total = unexpected_total + (thread:get("unexpected") or 0)
      local status = thread:get("last_unexpected") or 0
      if status ~= 0 then last_status = status end
      local sent = thread:get("sent") or 0
      if sent > most_sent then most_sent = sent end
   end
   local stride = (threads[1] and threads[1]:get("stride")) or 0
   local base = (threads[1] and threads[1]:get("base")) or 0
   local errors = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
         .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "unexpected": %d, "last_unexpected_status": %d, '
         .. '"p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, "next": %d}\n',
      summary.requests, summary.duration, summary.bytes, errors.connect, errors.read, errors.write,
      errors.status, errors.timeout, unexpected_total, last_status,
      latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
      latency.max, latency.mean, base + most_sent * #threads * stride))
end
