"""The HTTP series (`api.request_metrics.RequestSeries`) read as prometheus_client's own counter and
histogram would: the same exposition for the same requests, buckets by Prometheus's rule (an
observation counts in every bucket whose bound it does not exceed), and figures that agree with
each other when scraped while requests are counted."""

from __future__ import annotations

import re
import threading

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tenantry.api.request_metrics import (
    DURATION_BUCKETS,
    DURATION_HELP,
    DURATION_NAME,
    REQUESTS_HELP,
    REQUESTS_NAME,
    request_series,
)

REQUESTS = [
    ("GET", "/api/1/clients/{client_id}", 200, 0.004),
    ("GET", "/api/1/clients/{client_id}", 200, 0.005),  # on a bound: in that bucket
    ("GET", "/api/1/clients/{client_id}", 404, 0.0051),
    ("POST", "/api/1/clients", 201, 0.3),
    ("other", "unmatched", 405, 31.0),  # past the last bound: +Inf only
    ("GET", "/published/{token}", 200, 0.0),
]


def _sample(text: str, name: str, labels: str) -> float:
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name}{{{labels}}} not in:\n{text}"
    return float(found.group(1))


def test_the_exposition_is_the_one_of_a_prometheus_counter_and_histogram():
    theirs = CollectorRegistry()
    counter = Counter(REQUESTS_NAME, REQUESTS_HELP, ["method", "route", "status"], registry=theirs)
    histogram = Histogram(
        DURATION_NAME, DURATION_HELP, ["method", "route"], buckets=DURATION_BUCKETS, registry=theirs
    )
    ours = CollectorRegistry()
    series = request_series(ours)
    for method, route, status, seconds in REQUESTS:
        counter.labels(method, route, str(status)).inc()
        histogram.labels(method, route).observe(seconds)
        series.record(method, route, status, seconds)

    def comparable(registry: CollectorRegistry) -> str:  # the creation times differ by microseconds
        return re.sub(r"^(\S+_created\{.*\}) \S+$", r"\1 T", generate_latest(registry).decode(), flags=re.M)

    assert comparable(ours) == comparable(theirs)
    assert "_created{" in comparable(ours)


@pytest.mark.parametrize(
    ("le", "expected"),
    [("0.005", 2.0), ("0.01", 2.0), ("+Inf", 2.0)],
)
def test_a_series_counts_each_request_in_every_bucket_its_time_does_not_exceed(le, expected):
    registry = CollectorRegistry()
    series = request_series(registry)
    series.record("GET", "/x", 200, 0.005)
    series.record("GET", "/x", 500, 0.001)
    text = generate_latest(registry).decode()
    assert _sample(text, f"{DURATION_NAME}_bucket", f'le="{le}",method="GET",route="/x"') == expected
    assert _sample(text, f"{DURATION_NAME}_count", 'method="GET",route="/x"') == 2.0
    assert _sample(text, f"{DURATION_NAME}_sum", 'method="GET",route="/x"') == pytest.approx(0.006)
    assert _sample(text, f"{REQUESTS_NAME}_total", 'method="GET",route="/x",status="200"') == 1.0
    assert _sample(text, f"{REQUESTS_NAME}_total", 'method="GET",route="/x",status="500"') == 1.0


def test_a_scrape_while_requests_are_counted_sees_buckets_that_agree_with_the_count():
    registry = CollectorRegistry()
    series = request_series(registry)
    stop = threading.Event()

    def requests() -> None:
        n = 0
        while not stop.is_set():
            series.record("GET", f"/r{n % 7}", 200 + n % 3, (n % 100) / 1000)
            n += 1

    counting = threading.Thread(target=requests)
    counting.start()
    try:
        for _ in range(200):
            text = generate_latest(registry).decode()
            for labels, count in re.findall(rf"^{DURATION_NAME}_count\{{(.*)\}} (\S+)$", text, re.MULTILINE):
                assert _sample(text, f"{DURATION_NAME}_bucket", f'le="+Inf",{labels}') == float(count)
    finally:
        stop.set()
        counting.join()
    text = generate_latest(registry).decode()
    timed = sum(float(v) for v in re.findall(rf"^{DURATION_NAME}_count\{{.*\}} (\S+)$", text, re.MULTILINE))
    counted = sum(float(v) for v in re.findall(rf"^{REQUESTS_NAME}_total\{{.*\}} (\S+)$", text, re.MULTILINE))
    assert timed == counted > 0
