"""The daily API-call meter of SPEC §8 and the per-key burst limit.

`UsageCounter` is the port (Redis or the database), `BurstLimiter` wraps the `limits` package,
and `Meter` charges one call to a caller's quota, chosen once from settings by `meter_from_settings`.
"""
