"""Prometheus text exposition (format 0.0.4), written here: counters and histograms.

    dlcc_requests_total{route, method, status}         every request, by route template
    dlcc_request_errors_total{route, status}            the 4xx and 5xx among them
    dlcc_request_duration_seconds{route} (histogram)    wall time in the server
    dlcc_batch_size{model} (histogram)                  samples per inference call
    dlcc_inference_seconds{model} (histogram)           time of each inference call
    dlcc_models_loaded                                   a gauge

Routes are the templates (``/models/{name}/predict``), never raw paths, so a client cannot
grow the label set; unmatched paths are counted as ``<unmatched>``.
"""

from __future__ import annotations

import bisect
import threading

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    escaped = (
        str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for v in values
    )
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, escaped, strict=True)) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Counter:
    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.label_names = name, help_text, labels
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items())
        lines += [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]
        return lines


class Gauge(Counter):
    def set(self, value: float, *labels: str) -> None:
        with self._lock:
            self._values[labels] = float(value)

    def render(self) -> list[str]:
        lines = super().render()
        lines[1] = f"# TYPE {self.name} gauge"
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets, labels: tuple[str, ...] = ()):
        self.name, self.help, self.label_names = name, help_text, labels
        self.buckets = tuple(float(b) for b in buckets)
        self._series: dict[tuple[str, ...], list] = {}  # labels -> [counts..., sum, count]
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        """Count `value` in the series of `labels`: in its bucket, its sum and its count.

        A series is a list [n_0, ..., n_{B-1}, sum, count]: n_i counts the values in
        (bucket_{i-1}, bucket_i] (upper bounds are inclusive, as Prometheus' `le`); a value
        above the last bound counts only in sum and count (the +Inf bucket).
        """
        with self._lock:
            series = self._series.setdefault(labels, [0] * len(self.buckets) + [0.0, 0])
            # BEGIN SOLUTION Histogram.observe: count a value in its bucket, the sum and the count
            index = bisect.bisect_left(self.buckets, value)
            if index < len(self.buckets):
                series[index] += 1
            series[-2] += value
            series[-1] += 1
            # END SOLUTION
            # BEGIN PROMPT
            # self.buckets is sorted. The bucket of `value` is the first bound >= value:
            # bisect.bisect_left(self.buckets, value) finds its index (len(self.buckets) if
            # it is above them all). Add 1 there, `value` to the sum (series[-2]) and 1 to
            # the count (series[-1]). The lock is held: other threads observe too.
            # END PROMPT

    def count(self, *labels: str) -> int:
        series = self._series.get(labels)
        return 0 if series is None else series[-1]

    def total(self, *labels: str) -> float:
        series = self._series.get(labels)
        return 0.0 if series is None else series[-2]

    def render(self) -> list[str]:
        """The histogram in the text format: HELP and TYPE, then for each series (sorted by
        labels) its cumulative buckets, ``+Inf`` last, then ``_sum`` and ``_count``::

            name_bucket{route="/x",le="0.001"} 0
            name_bucket{route="/x",le="0.0025"} 2      # values <= 0.0025: cumulative
            name_bucket{route="/x",le="+Inf"} 3        # = the count
            name_sum{route="/x"} 0.0051
            name_count{route="/x"} 3
        """
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        names = (*self.label_names, "le")
        for labels, series in items:
            # BEGIN SOLUTION Histogram.render: one series' cumulative buckets, +Inf, sum, count
            running = 0
            for bound, count in zip(self.buckets, series, strict=False):
                running += count
                lines.append(
                    f"{self.name}_bucket{_labels(names, (*labels, _number(bound)))} {running}"
                )
            lines.append(f"{self.name}_bucket{_labels(names, (*labels, '+Inf'))} {series[-1]}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, labels)} {series[-2]!r}")
            lines.append(f"{self.name}_count{_labels(self.label_names, labels)} {series[-1]}")
            # END SOLUTION
            # BEGIN PROMPT
            # series = [n_0, ..., n_{B-1}, sum, count] (see observe). A Prometheus bucket
            # counts every value <= its bound, so write running totals of n_i, one line per
            # bound, with the label le=_number(bound) after the series' own labels:
            # _labels(names, (*labels, text)) writes {route="/x",le="0.01"}. Then the
            # le="+Inf" bucket (every value: the count), `_sum` (repr of the float) and
            # `_count`, these two with the series' own labels only (self.label_names).
            # END PROMPT
        return lines


class ServerMetrics:
    """The server's metrics; `render()` is the body of GET /metrics."""

    def __init__(self):
        self.requests = Counter(
            "dlcc_requests_total", "HTTP requests by route, method and status.",
            ("route", "method", "status"),
        )  # fmt: skip
        self.errors = Counter(
            "dlcc_request_errors_total", "Requests answered with a 4xx or 5xx status.",
            ("route", "status"),
        )  # fmt: skip
        self.latency = Histogram(
            "dlcc_request_duration_seconds", "Time from request to response, in seconds.",
            LATENCY_BUCKETS, ("route",),
        )  # fmt: skip
        self.batch_size = Histogram(
            "dlcc_batch_size", "Samples per inference call.", BATCH_BUCKETS, ("model",)
        )
        self.inference = Histogram(
            "dlcc_inference_seconds", "Time of one inference call, in seconds.",
            LATENCY_BUCKETS, ("model",),
        )  # fmt: skip
        self.models_loaded = Gauge("dlcc_models_loaded", "Models this server serves.")

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.inc(route, method, str(status))
        if status >= 400:
            self.errors.inc(route, str(status))
        self.latency.observe(seconds, route)

    def render(self) -> str:
        lines = []
        for metric in (
            self.requests, self.errors, self.latency, self.batch_size, self.inference,
            self.models_loaded,
        ):  # fmt: skip
            lines += metric.render()
        return "\n".join(lines) + "\n"
