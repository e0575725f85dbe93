// An application instrumented with the OpenTelemetry JavaScript SDK, whose
// OTLP/HTTP log exporter sends OTLP **JSON**, configured only by the
// standard environment variables, e.g.
//
//   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
//   OTEL_RESOURCE_ATTRIBUTES=service.name=cart,service.version=c3 \
//   node emit.js 5
//
// Each error is a real exception, logged with the semantic-convention
// attributes exception.type / exception.message / exception.stacktrace.
'use strict';

const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
const { detectResources, envDetector, defaultResource } = require('@opentelemetry/resources');
const { SeverityNumber } = require('@opentelemetry/api-logs');

function total(cart) {
  return cart.items.reduce((sum, item) => sum + item.price.amount, 0);
}

async function main() {
  const errors = Number(process.argv[2] || 5);
  const resource = defaultResource().merge(detectResources({ detectors: [envDetector] }));
  const provider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter() })],
  });
  const logger = provider.getLogger('shop.cart');
  for (let i = 0; i < errors; i++) {
    try {
      total({ items: [{ price: { amount: 3 } }, { sku: `s-${i}` }] });
    } catch (e) {
      logger.emit({
        severityNumber: SeverityNumber.ERROR,
        severityText: 'ERROR',
        body: `cart total failed for cart ${i}`,
        attributes: {
          'exception.type': e.name,
          'exception.message': e.message,
          'exception.stacktrace': e.stack,
        },
      });
    }
  }
  await provider.shutdown();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
