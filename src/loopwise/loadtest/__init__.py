"""The load generator behind ``loopwise loadtest``: open- and closed-loop traffic
against an endpoint, with latency percentiles."""
