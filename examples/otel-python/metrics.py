"""An HTTP service's metrics through the OpenTelemetry Python SDK's default
OTLP metric exporter (HTTP/protobuf, cumulative temporality), configured
only by the standard environment variables (OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_RESOURCE_ATTRIBUTES), as an instrumented server records them:
`http.server.request.duration` per request with its route and status code,
and the process's memory as an observable gauge.

    python metrics.py --requests 30 --errors 3
"""

import argparse
import resource
import sys
import time

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader


def memory(_options: CallbackOptions):
    yield Observation(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--errors", type=int, default=3)
    args = ap.parse_args()
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=500)
    provider = MeterProvider(metric_readers=[reader])  # resource from the environment
    meter = provider.get_meter("shop.http")
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    meter.create_observable_gauge("process.memory.usage", callbacks=[memory], unit="By")
    for i in range(args.requests):
        status = 503 if i < args.errors else 200
        duration.record(
            0.02 + 0.001 * i,
            {"http.route": "/quote", "http.response.status_code": status, "http.request.method": "GET"},
        )
        time.sleep(0.05)  # spread over a few exports
    provider.shutdown()  # the last export
    return 0


if __name__ == "__main__":
    sys.exit(main())
