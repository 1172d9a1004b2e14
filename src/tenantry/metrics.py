"""Prometheus metrics. Counters live in the process that does the work (the web app, or a
`tenantry worker` with `--metrics-port`); the queue gauges are read from the database at scrape
time, so every process reports the same queue."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REFRESHES = Counter(
    "tenantry_refreshes_total", "Data-source refreshes run by this process, by result.", ["result"]
)
REFRESH_LAG = Histogram(
    "tenantry_refresh_lag_seconds",
    "Seconds between when a refresh was due and when a worker claimed it.",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
EVENTS_DELIVERED = Counter(
    "tenantry_events_delivered_total",
    "Event delivery attempts by this process, by channel (webhook, email) and result "
    "(delivered, retrying, failed: given up, logged: no SMTP server).",
    ["channel", "result"],
)
MAILS_SENT = Counter(
    "tenantry_mails_total",
    "Attempts at sending e-mails of the outbox by this process, by kind (dashboard, invitation, "
    "password_reset) and result (delivered, retrying, failed: given up, logged: no SMTP server).",
    ["kind", "result"],
)
REPORTS = Counter(
    "tenantry_reports_total",
    "Slots of scheduled reports run by this process, by result (sent, skipped, failed, duplicate: "
    "another worker had run the slot).",
    ["result"],
)
TRIAL_EVENTS = Counter("tenantry_trial_events_total", "Trial events written to the outbox.", ["type"])
# Incremented by the API-call meter when it refuses a call: `daily_limit` (429
# daily_api_limit_reached), `burst` (429 rate_limited), `unavailable` (503 meter_unavailable: the
# meter could not count, so the call was refused rather than let through).
METER_REFUSALS = Counter(
    "tenantry_api_meter_refusals_total",
    "API calls refused by the meter, by reason (daily_limit, burst, unavailable).",
    ["reason"],
)
for _reason in ("daily_limit", "burst", "unavailable"):
    METER_REFUSALS.labels(reason=_reason)  # every reason is exposed from the start, at 0
