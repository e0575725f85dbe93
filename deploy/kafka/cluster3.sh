#!/usr/bin/env bash
# A 3-node Apache Kafka KRaft cluster on loopback (every node is a combined
# broker+controller), for replication / failure tests.
#
# Usage: deploy/kafka/cluster3.sh start|stop|status [--clean]
#   start   start the nodes that are not running, wait until all 3 are ready,
#           then prove the cluster works: create a topic with RF 3 and produce
#           records with acks=all (fails loudly otherwise)
#   stop    stop all nodes (SIGTERM in parallel, SIGKILL after KAFKA_STOP_TIMEOUT);
#           --clean also deletes the cluster's run dir
#   status  show each node; exit 0 only if all 3 are running
#   smoke   re-run the start-up smoke test against the running cluster
# Env:   KAFKA_CLUSTER_BASE_PORT  first broker port (default 29092 -> brokers
#                                 29092,29093,29094; controllers base+100..base+102)
#        KAFKA_CLUSTER_RUN_DIR    run dir (default deploy/kafka/run/cluster3-<base>)
#        KAFKA_CLUSTER_HEAP_OPTS  JVM heap per node (default "-Xms128m -Xmx384m")
#        KAFKA_WAIT_TIMEOUT       readiness timeout per node in seconds (default 90)
#        KAFKA_STOP_TIMEOUT       seconds between SIGTERM and SIGKILL (default 30)
# Settings: default.replication.factor=3, min.insync.replicas=2, offsets and
# transaction topics RF 3. Bootstrap: 127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BASE="${KAFKA_CLUSTER_BASE_PORT:-29092}"
[[ "$BASE" =~ ^[0-9]+$ ]] || die "KAFKA_CLUSTER_BASE_PORT must be a number, got '$BASE'"
CLUSTER_DIR="${KAFKA_CLUSTER_RUN_DIR:-$KAFKA_HOME/run/cluster3-$BASE}"
HEAP="${KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx384m}"
NODES=(1 2 3)
SMOKE_TOPIC="selfheal-cluster3-smoke"
SMOKE_RECORDS=20000

broker_port() { echo $((BASE + $1 - 1)); }
controller_port() { echo $((BASE + 100 + $1 - 1)); }
node_dir() { echo "$CLUSTER_DIR/node$1"; }

bootstrap() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("127.0.0.1:$(broker_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

voters() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$n@127.0.0.1:$(controller_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

stop_all() {
  local n pids=()
  for n in "${NODES[@]}"; do
    # In parallel: stopping one node at a time makes the last ones lose the
    # controller quorum and wait for their controlled shutdown to time out.
    stop_broker "$(node_dir "$n")" "${KAFKA_STOP_TIMEOUT:-30}" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n"; done
}

cmd_start() {
  local n dir port cport started=0 start pids=() failed=0
  "$KAFKA_HOME/fetch.sh"
  start=$(now_ms)
  mkdir -p "$CLUSTER_DIR"
  [[ -f "$CLUSTER_DIR/cluster.id" ]] || random_cluster_id >"$CLUSTER_DIR/cluster.id"
  for n in "${NODES[@]}"; do
    dir=$(node_dir "$n")
    port=$(broker_port "$n")
    cport=$(controller_port "$n")
    if pid=$(running_pid "$dir"); then
      log "node $n already running (pid $pid) on 127.0.0.1:$port"
      continue
    fi
    for p in "$port" "$cport"; do
      port_open "$p" && die "port $p is already in use by another process"
    done
    mkdir -p "$dir/logs" "$dir/data"
    write_log4j "$dir"
    write_server_properties "$dir" "$n" "$port" "$cport" "$(voters)" 3 2
    format_storage "$dir" "$(<"$CLUSTER_DIR/cluster.id")" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || failed=1; done
  ((failed == 0)) || die "storage format failed"
  for n in "${NODES[@]}"; do
    dir=$(node_dir "$n")
    running_pid "$dir" >/dev/null && continue
    launch_broker "$dir" "$HEAP"
    log "started node $n pid $(<"$dir/kafka.pid") on 127.0.0.1:$(broker_port "$n") (controller $(controller_port "$n"))"
    started=$((started + 1))
  done
  for n in "${NODES[@]}"; do
    if ! KAFKA_RUN_DIR="$(node_dir "$n")" KAFKA_WAIT_START_MS="$start" \
      "$KAFKA_HOME/wait.sh" "$(broker_port "$n")"; then
      log "node $n did not become ready; stopping the cluster (logs kept in $CLUSTER_DIR)"
      stop_all
      exit 1
    fi
  done
  log "all 3 nodes ready after $(elapsed_since "$start")s ($started started now)"
  smoke_test
  log "cluster up: bootstrap.servers=$(bootstrap) (total $(elapsed_since "$start")s)"
}

# Proves replication works: topic with RF 3 (min ISR 2), all replicas in
# sync, and $SMOKE_RECORDS records produced with acks=all without errors.
smoke_test() {
  local bs out describe t0 bad errors sent try
  bs=$(bootstrap)
  t0=$(now_ms)
  kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" \
    --create --if-not-exists --topic "$SMOKE_TOPIC" --partitions 3 --replication-factor 3 \
    --config min.insync.replicas=2 >/dev/null ||
    die "SMOKE TEST FAILED: could not create topic $SMOKE_TOPIC with RF 3"
  if ! out=$(kafka_java org.apache.kafka.tools.ProducerPerformance --topic "$SMOKE_TOPIC" \
    --num-records "$SMOKE_RECORDS" --record-size 200 --throughput -1 --print-metrics \
    --producer-props "bootstrap.servers=$bs" acks=all enable.idempotence=true \
    delivery.timeout.ms=30000 request.timeout.ms=10000 2>&1); then
    printf '%s\n' "$out" >&2
    die "SMOKE TEST FAILED: ProducerPerformance exited non-zero"
  fi
  # ProducerPerformance prints send errors but still exits 0: check the
  # producer's own counters (errors must be 0, sends must be all records).
  errors=$(awk '/^producer-metrics:record-error-total:/{print $NF}' <<<"$out")
  sent=$(awk '/^producer-metrics:record-send-total:/{print $NF}' <<<"$out")
  if [[ -z "$errors" || -z "$sent" ]] ||
    ! awk -v e="$errors" -v s="$sent" -v n="$SMOKE_RECORDS" 'BEGIN{exit !(e == 0 && s == n)}' ||
    ! grep -qE "^$SMOKE_RECORDS records sent" <<<"$out"; then
    grep -vE '^(producer|app-info|kafka-metrics|producer-node)' <<<"$out" | tail -n 30 >&2
    die "SMOKE TEST FAILED: producing $SMOKE_RECORDS records with acks=all did not succeed (record-error-total=${errors:-?}, record-send-total=${sent:-?})"
  fi
  # Every partition must have 3 replicas, all in sync (a node that was just
  # restarted may need a few seconds to rejoin the ISR).
  for ((try = 0; ; try++)); do
    describe=$(kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" \
      --describe --topic "$SMOKE_TOPIC") || die "SMOKE TEST FAILED: describe topic"
    bad=$(awk '/Partition: /{
        r=""; i="";
        for (k = 1; k <= NF; k++) { if ($k == "Replicas:") r=$(k+1); if ($k == "Isr:") i=$(k+1) }
        if (split(r, a, ",") != 3 || split(i, b, ",") != 3) print
      }' <<<"$describe")
    [[ -z "$bad" && $(grep -c 'Partition: ' <<<"$describe") -eq 3 ]] && break
    if ((try >= 15)); then
      printf '%s\n' "$describe" >&2
      die "SMOKE TEST FAILED: partitions without 3 in-sync replicas"
    fi
    sleep 2
  done
  log "smoke test ok in $(elapsed_since "$t0")s: topic $SMOKE_TOPIC RF 3 (ISR 3/3 on 3 partitions); $(grep -E '^[0-9]+ records sent' <<<"$out" | tail -n 1 | cut -d, -f1-3)"
}

cmd_stop() {
  local t0
  t0=$(now_ms)
  stop_all
  log "cluster stopped in $(elapsed_since "$t0")s"
  if [[ "${1:-}" == --clean && -d "$CLUSTER_DIR" ]]; then
    rm -rf "$CLUSTER_DIR"
    log "removed $CLUSTER_DIR"
  fi
}

cmd_status() {
  local n dir up=0 pid
  for n in "${NODES[@]}"; do
    dir=$(node_dir "$n")
    if pid=$(running_pid "$dir"); then
      up=$((up + 1))
      echo "node $n: running (pid $pid) broker 127.0.0.1:$(broker_port "$n") controller 127.0.0.1:$(controller_port "$n")"
    else
      echo "node $n: stopped (broker port $(broker_port "$n"))"
    fi
  done
  if ((up > 0)); then
    kafka_java org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$(bootstrap)" \
      describe --status 2>/dev/null | sed 's/^/  /' || echo "  (quorum status unavailable)"
  fi
  echo "bootstrap.servers=$(bootstrap)"
  ((up == ${#NODES[@]}))
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status ;;
  smoke) smoke_test ;;
  *) sed -n '2,22p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
