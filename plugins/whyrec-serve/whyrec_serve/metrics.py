"""Prometheus metrics of one server process: requests and latency per endpoint, explainer time
per (model, method). Each app has its own registry (several apps in one process: tests)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# latency buckets in seconds: the service's target is p99 <= 25 ms, so fine steps below 50 ms
BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("whyrec_requests", "HTTP requests answered, by endpoint and status code",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("whyrec_request_seconds", "Time to answer a request, by endpoint",
                                 ["endpoint"], buckets=BUCKETS, registry=self.registry)
        self.explainer = Histogram("whyrec_explainer_seconds", "Time of one explainer call on one request's top-k",
                                   ["model", "explainer"], buckets=BUCKETS, registry=self.registry)
        self.events = Counter("whyrec_events", "Interactions accepted by POST /events (written and applied)",
                              registry=self.registry)
        self.reloads = Counter("whyrec_reloads", "Runs swapped in by POST /admin/reload or SIGHUP",
                               ["outcome"], registry=self.registry)

    def observe_explainer(self, model: str, method: str, seconds: float) -> None:
        self.explainer.labels(model, method).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
