#!/usr/bin/env bash
# Thin wrapper around Kafka's producer benchmark (kafka-producer-perf-test):
# runs org.apache.kafka.tools.ProducerPerformance with the given arguments.
#
# Usage: deploy/kafka/perf-test.sh --topic T --num-records N --record-size B \
#          --throughput -1 --producer-props bootstrap.servers=127.0.0.1:9092 acks=all
#        deploy/kafka/perf-test.sh --help
# Env:   KAFKA_TOOL_HEAP_OPTS (default "-Xmx256m"), KAFKA_TOOL_LOG_LEVEL (default WARN)
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-class.sh" org.apache.kafka.tools.ProducerPerformance "$@"
