"""chatconf load tests: Locust scenarios (locustfile.py), a byte-accurate streaming client,
latency metrics as pure functions, open-loop shapes and exact cross-worker aggregation."""
