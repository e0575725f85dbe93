"""An application instrumented the standard way with the OpenTelemetry Python
SDK: Python `logging` records go through the SDK's LoggingHandler to the
*default* OTLP exporter (HTTP/protobuf), configured only by the standard
environment variables, e.g.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
    OTEL_RESOURCE_ATTRIBUTES=service.name=checkout,service.version=b2 \
    python emit.py --errors 5

Each error is a real exception raised and logged with `logger.exception`, so
the record carries `exception.type`, `exception.message` and
`exception.stacktrace` as the SDK sets them.
"""

import argparse
import logging
import sys

from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

RATES = {"USD": 1.0, "EUR": 0.92}


def convert(amount, currency):
    return amount * RATES[currency]


def quote(params):
    return convert(params["subtotal"], params.get("currency", "usd"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--errors", type=int, default=5)
    args = ap.parse_args()
    provider = LoggerProvider()  # resource from OTEL_RESOURCE_ATTRIBUTES
    set_logger_provider(provider)
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    log = logging.getLogger("shop.pricing")
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    log.setLevel(logging.INFO)
    for i in range(args.errors):
        try:
            quote({"subtotal": 10 + i})
        except KeyError:
            log.exception("quote failed for order %d", i)
    # Flushes the batch; the exporter reports failures on stderr.
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
