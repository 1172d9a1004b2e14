"""The daily API-call meter of SPEC §8 and §12, and the burst limit per client.

`UsageCounter` is the port (Redis, kept in the database too, or the database alone), `BurstLimiter`
wraps the `limits` package, `MeterCalendar` says which day a call falls on, and `Meter` charges one
call to a caller's quota, chosen once from settings by `meter_from_settings`.
"""
