#!/usr/bin/env bash
# Run any Kafka tool class with the fetched jars (like kafka-run-class.sh).
#
# Usage: deploy/kafka/kafka-class.sh CLASS [ARGS...]
#   e.g. kafka-class.sh org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
# Useful classes (Kafka 3.9.1):
#   org.apache.kafka.tools.TopicCommand                  (kafka-topics)
#   kafka.tools.ConsoleProducer                           (kafka-console-producer)
#   org.apache.kafka.tools.consumer.ConsoleConsumer       (kafka-console-consumer)
#   org.apache.kafka.tools.ProducerPerformance            (kafka-producer-perf-test)
#   org.apache.kafka.tools.ConsumerPerformance            (kafka-consumer-perf-test)
#   org.apache.kafka.tools.MetadataQuorumCommand          (kafka-metadata-quorum)
#   org.apache.kafka.tools.consumer.group.ConsumerGroupCommand (kafka-consumer-groups)
# Env:   KAFKA_TOOL_HEAP_OPTS  JVM heap for the tool (default "-Xmx256m")
#        KAFKA_TOOL_LOG_LEVEL  log level of the tool's own logging (default WARN)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -ge 1 ]] || die "usage: kafka-class.sh CLASS [ARGS...]"
"$KAFKA_HOME/fetch.sh"

read -r -a heap_opts <<<"${KAFKA_TOOL_HEAP_OPTS:--Xmx256m}"
exec java "${heap_opts[@]}" -Djava.awt.headless=true \
  "-Dlog4j.configuration=file:$(tools_log4j "${KAFKA_TOOL_LOG_LEVEL:-WARN}")" \
  -cp "$KAFKA_LIB/*" "$@"
