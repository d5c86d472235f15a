"""The machinery every domain app uses: errors, rate limits, the outbox, realtime, replicas, logs."""
