#!/usr/bin/env bash
# Run a throw-away, single-node Apache Kafka broker (KRaft, combined
# broker+controller, 127.0.0.1 only) for cirt-hub development and tests.
#
# The broker is assembled from the official org.apache.kafka:kafka_2.13
# artifact and its runtime dependencies on Maven Central (no tarball download,
# no Docker). Jars are cached outside the repo:
#   ${CIRT_HUB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cirt-hub}/kafka/<version>/libs
#
# Run `kafka.sh --help` for usage.
set -euo pipefail

# Pinned Kafka version (override with CIRT_HUB_KAFKA_VERSION).
# Why 4.4.0: the newest release on Maven Central (Nov 2026), and aiokafka 0.14.0
# passed the full probe against it (17/17 checks, 8 clean runs): idempotent
# producer, 2-consumer group split + commit + resume, transactions with
# send_offsets_to_transaction, read_committed hiding aborted records, fencing
# of a SIGKILLed transactional producer (its records never visible, group
# offsets unchanged), AIOKafkaAdminClient topic creation with retention.ms=-1.
# 3.9.1 (the fallback) passes the same probe too. The project's own bus contract
# suite (tests/bus/, incl. SIGKILL between produce and commit) passes on 4.4.0.
# Details: deploy/kafka/README.md.
KAFKA_VERSION="${CIRT_HUB_KAFKA_VERSION:-4.4.0}"
# SLF4J binding + log4j2 added to the broker's class path (the published
# kafka_2.13 pom carries no SLF4J binding, so without it the broker logs nothing).
LOG4J2_VERSION="2.25.5"
MAVEN_DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${CIRT_HUB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cirt-hub}"
KAFKA_CACHE="$CACHE_ROOT/kafka"
VERSION_DIR="$KAFKA_CACHE/$KAFKA_VERSION"
LIBS_DIR="$VERSION_DIR/libs"
COMPLETE_MARKER="$VERSION_DIR/.complete"
MAVEN_REPO="$KAFKA_CACHE/m2"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
HEAP="${CIRT_HUB_KAFKA_HEAP:-768m}"
START_TIMEOUT="${CIRT_HUB_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT=20
HOST=127.0.0.1

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat <<EOF
Usage: $(basename "$0") COMMAND [OPTIONS]

Local single-node Apache Kafka $KAFKA_VERSION (KRaft, broker+controller in one
JVM, listening on $HOST only) for cirt-hub development and tests.

Commands:
  fetch                   Download the broker jars from Maven Central into
                          $LIBS_DIR
                          (skipped when already complete).
  start [--port P] [--controller-port C] [--dir RUNDIR] [--keep-data]
                          Fetch if needed, write RUNDIR/server.properties, wipe
                          and format RUNDIR/data with a new cluster id, start the
                          broker in the background and wait (up to ${START_TIMEOUT}s) until
                          it answers Kafka requests. Defaults: P=9092, C=P+1 or
                          the next free port, RUNDIR=\${CIRT_HUB_KAFKA_DIR:-$KAFKA_CACHE/run-P}.
                          Files: RUNDIR/kafka.pid, RUNDIR/server.log, RUNDIR/bootstrap.
                          --keep-data restarts a stopped broker on its existing
                          data (same ports) instead of wiping it.
  stop [--dir RUNDIR | --port P]
                          Stop the broker whose pid is in RUNDIR/kafka.pid
                          (SIGTERM, then SIGKILL after ${STOP_TIMEOUT}s).
  status [--dir RUNDIR | --port P]
                          Exit 0 and print pid/bootstrap if running, else exit 3.
  -h, --help              This help.

Environment:
  CIRT_HUB_KAFKA_VERSION   Kafka version (default $KAFKA_VERSION is pinned in this script)
  CIRT_HUB_CACHE_DIR       cache root (default \${XDG_CACHE_HOME:-\$HOME/.cache}/cirt-hub)
  CIRT_HUB_KAFKA_DIR       default RUNDIR
  CIRT_HUB_KAFKA_HEAP      JVM max heap (default 768m)
  CIRT_HUB_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 90)
  CIRT_HUB_KAFKA_EXTRA_PROPERTIES  a file appended to server.properties (its keys win)
EOF
}

# ---------------------------------------------------------------- helpers

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

abspath() {
    mkdir -p "$1"
    (cd "$1" && pwd -P)
}

# True when something accepts TCP connections on HOST:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# True when the broker on HOST:$1 answers a Kafka ApiVersions request (v0)
# with our correlation id: proves the request path works, not just the socket.
broker_answers() {
    local port="$1" reply
    reply="$(
        exec 3<>"/dev/tcp/$HOST/$port" || exit 1
        # size=11, api_key=18 (ApiVersions), api_version=0,
        # correlation_id=0x0c1a7b0b, client_id="k"
        printf '\x00\x00\x00\x0b\x00\x12\x00\x00\x0c\x1a\x7b\x0b\x00\x01k' >&3
        timeout 5 head -c 8 <&3 | od -An -tx1 | tr -d ' \n'
    )" 2>/dev/null || return 1
    [[ "${reply:8:8}" == "0c1a7b0b" ]]
}

# PID of the broker recorded in $1/kafka.pid if that process is alive and
# really is our java kafka.Kafka for that RUNDIR; empty output otherwise.
live_pid() {
    local rundir="$1" pid cmdline
    [[ -f "$rundir/kafka.pid" ]] || return 0
    pid="$(tr -dc '0-9' <"$rundir/kafka.pid")"
    [[ -n "$pid" ]] || return 0
    [[ -r "/proc/$pid/cmdline" ]] || return 0
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    if [[ "$cmdline" == *kafka.Kafka* && "$cmdline" == *"$rundir/server.properties"* ]]; then
        echo "$pid"
    fi
}

# Terminate pid $1 (already verified by the caller): SIGTERM, wait, SIGKILL.
terminate() {
    local pid="$1" waited=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= STOP_TIMEOUT * 10)); then
            log "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    # Reap it if it is our child, and wait until it is really gone.
    wait "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]]; do
        sleep 0.1
    done
}

# ---------------------------------------------------------------- fetch

# The jars of the pinned version are pinned too (deploy/kafka/jars-<version>.sha256): what
# the local Maven repo or a mirror hands over must be byte for byte what was reviewed. A
# version without a manifest (CIRT_HUB_KAFKA_VERSION) is fetched on Maven's checksums only.
verify_jars() {
    local dir="$1" manifest="$SCRIPT_DIR/jars-$KAFKA_VERSION.sha256" listed present
    if [[ ! -f "$manifest" ]]; then
        log "no pinned digests for Kafka $KAFKA_VERSION ($manifest): Maven's checksums only"
        return 0
    fi
    listed="$(awk '{print $2}' "$manifest" | sort)"
    present="$(cd "$dir" && find . -maxdepth 1 -name '*.jar' -printf '%f\n' | sort)"
    if [[ "$listed" != "$present" ]]; then
        die "the jars fetched differ from $manifest: $(diff <(echo "$listed") <(echo "$present") | grep '^[<>]' | tr '\n' ' ')"
    fi
    local bad
    bad="$(cd "$dir" && sha256sum --quiet -c "$manifest" 2>&1 | grep ': FAILED' | cut -d: -f1 | tr '\n' ' ')" || true
    [[ -z "$bad" ]] || die "SHA-256 of ${bad% } does not match $manifest: not the reviewed jar (if the local Maven repo $MAVEN_REPO was altered, remove it and fetch again)"
}

do_fetch() {
    [[ "$KAFKA_VERSION" =~ ^[0-9][0-9A-Za-z.-]*$ ]] || die "bad Kafka version '$KAFKA_VERSION'"
    if [[ -f "$COMPLETE_MARKER" && -d "$LIBS_DIR" ]]; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn (Apache Maven) is required to fetch Kafka"
    mkdir -p "$VERSION_DIR" "$MAVEN_REPO"

    # Serialise concurrent fetches of the same version.
    if command -v flock >/dev/null; then
        exec 9>"$VERSION_DIR/.fetch.lock"
        flock 9
        if [[ -f "$COMPLETE_MARKER" && -d "$LIBS_DIR" ]]; then
            exec 9>&-
            return 0
        fi
    fi

    log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS_DIR"
    sed -e "s/@KAFKA_VERSION@/$KAFKA_VERSION/g" -e "s/@LOG4J2_VERSION@/$LOG4J2_VERSION/g" \
        "$SCRIPT_DIR/pom.xml.in" >"$VERSION_DIR/pom.xml"

    local attempt tmp="$VERSION_DIR/libs.partial" mvn_log="$VERSION_DIR/fetch.log" ok=""
    local -a update=()
    for attempt in 1 2 3; do
        rm -rf "$tmp"
        # -U on retries: otherwise Maven replays a failure it cached in the local repo.
        # -C: a checksum that does not match Maven Central's stops the download.
        if mvn -B -q -ntp -C -Dstyle.color=never "${update[@]}" -f "$VERSION_DIR/pom.xml" \
            -Dmaven.repo.local="$MAVEN_REPO" \
            "$MAVEN_DEPENDENCY_PLUGIN:copy-dependencies" \
            -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
            ok=1
            break
        fi
        update=(-U)
        log "mvn download failed (attempt $attempt/3); last lines of $mvn_log:"
        tail -n 15 "$mvn_log" >&2 || true
        if ((attempt < 3)); then
            log "retrying in $((attempt * attempt * 5))s"
            sleep $((attempt * attempt * 5))
        fi
    done
    [[ -n "$ok" ]] || die "could not fetch Apache Kafka $KAFKA_VERSION from Maven Central"

    verify_jars "$tmp"
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"
    [[ -n "$(compgen -G "$tmp/kafka-clients-*.jar")" ]] || die "kafka-clients jar missing after fetch"
    [[ -n "$(compgen -G "$tmp/log4j-slf4j-impl-*.jar")" ]] || die "log4j-slf4j-impl jar missing after fetch"

    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    printf 'kafka_2.13 %s, %s jars, fetched %s\n' "$KAFKA_VERSION" \
        "$(find "$LIBS_DIR" -name '*.jar' | wc -l)" "$(date -u +%FT%TZ)" >"$COMPLETE_MARKER"
    log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1))"
    if command -v flock >/dev/null; then exec 9>&-; fi
}

# ---------------------------------------------------------------- start

write_properties() {
    local rundir="$1" port="$2" cport="$3"
    cat >"$rundir/server.properties" <<EOF
# Generated by deploy/kafka/kafka.sh for Apache Kafka $KAFKA_VERSION -- single-node test broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$cport
listeners=PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$cport
advertised.listeners=PLAINTEXT://$HOST:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$rundir/data

# One broker: internal topics must not ask for more replicas than exist.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1

# Fast, predictable tests.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
num.partitions=1
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
EOF
    # Settings of a test's own (e.g. SASL listeners and an authorizer): later keys win.
    if [[ -n "${CIRT_HUB_KAFKA_EXTRA_PROPERTIES:-}" ]]; then
        cat "$CIRT_HUB_KAFKA_EXTRA_PROPERTIES" >>"$rundir/server.properties"
    fi
}

do_start() {
    local port=9092 cport="" rundir="" keep=""
    while (($#)); do
        case "$1" in
            --keep-data) keep=1; shift ;;
            --port) port="${2:?--port needs a value}"; shift 2 ;;
            --port=*) port="${1#*=}"; shift ;;
            --controller-port) cport="${2:?--controller-port needs a value}"; shift 2 ;;
            --controller-port=*) cport="${1#*=}"; shift ;;
            --dir) rundir="${2:?--dir needs a value}"; shift 2 ;;
            --dir=*) rundir="${1#*=}"; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "start: unknown option '$1' (see --help)" ;;
        esac
    done
    is_uint "$port" || die "--port must be a number"
    [[ -z "$cport" ]] || is_uint "$cport" || die "--controller-port must be a number"
    rundir="$(abspath "${rundir:-${CIRT_HUB_KAFKA_DIR:-$KAFKA_CACHE/run-$port}}")"

    local pid
    pid="$(live_pid "$rundir")"
    [[ -z "$pid" ]] || die "a broker is already running from $rundir (pid $pid); stop it first: $0 stop --dir $rundir"
    rm -f "$rundir/kafka.pid"

    port_in_use "$port" && die "port $HOST:$port is already in use"
    if [[ -z "$cport" ]]; then
        cport=$((port + 1))
        while port_in_use "$cport"; do
            cport=$((cport + 1))
            ((cport <= port + 200)) || die "no free controller port found above $port"
        done
    fi
    [[ "$cport" != "$port" ]] || die "--controller-port must differ from --port"
    port_in_use "$cport" && die "controller port $HOST:$cport is already in use"

    command -v "$JAVA" >/dev/null || die "java not found (need Java 17+)"
    do_fetch

    local log4j="$SCRIPT_DIR/log4j2.xml" cp="$LIBS_DIR/*"
    local -a jvm=(
        "-Xmx$HEAP" -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$log4j" "-Dkafka.logs.dir=$rundir"
    )

    if [[ -n "$keep" && -f "$rundir/data/meta.properties" ]]; then
        # A restart of the same broker: its topics, offsets and transactions are kept.
        write_properties "$rundir" "$port" "$cport"
        log "restarting Apache Kafka $KAFKA_VERSION on $HOST:$port with the data in $rundir/data"
        printf '%s:%s\n' "$HOST" "$port" >"$rundir/bootstrap"
        start_broker "$rundir" "$port"
        return
    fi
    rm -rf "$rundir/data"
    mkdir -p "$rundir/data"
    write_properties "$rundir" "$port" "$cport"
    printf '%s:%s\n' "$HOST" "$port" >"$rundir/bootstrap"

    local cluster_id
    cluster_id="$("$JAVA" "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>"$rundir/format.log" | tail -n 1)"
    [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || { cat "$rundir/format.log" >&2; die "could not generate a cluster id"; }
    if ! "$JAVA" "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$rundir/server.properties" >>"$rundir/format.log" 2>&1; then
        tail -n 30 "$rundir/format.log" >&2
        die "formatting KRaft storage in $rundir/data failed"
    fi

    log "starting Apache Kafka $KAFKA_VERSION on $HOST:$port (controller $HOST:$cport), run dir $rundir"
    start_broker "$rundir" "$port"
}

# Launch the broker of RUNDIR (properties written, storage formatted) and wait until it
# answers. Uses do_start's JAVA command line (jvm, cp): bash functions see their caller's locals.
start_broker() {
    local rundir="$1" port="$2" pid
    : >"$rundir/server.log"
    nohup "$JAVA" "${jvm[@]}" -cp "$cp" kafka.Kafka "$rundir/server.properties" \
        >>"$rundir/server.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$rundir/kafka.pid"

    local start=$SECONDS elapsed last_report=0
    while :; do
        elapsed=$((SECONDS - start))
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            log "broker process $pid exited during startup; last lines of $rundir/server.log:"
            tail -n 40 "$rundir/server.log" >&2
            rm -f "$rundir/kafka.pid"
            exit 1
        fi
        if grep -q 'Kafka Server started' "$rundir/server.log" && broker_answers "$port"; then
            break
        fi
        if ((elapsed >= START_TIMEOUT)); then
            log "broker not ready after ${START_TIMEOUT}s; last lines of $rundir/server.log:"
            tail -n 40 "$rundir/server.log" >&2
            log "stopping pid $pid"
            terminate "$pid"
            rm -f "$rundir/kafka.pid"
            exit 1
        fi
        if ((elapsed - last_report >= 5)); then
            log "waiting for the broker to accept clients (${elapsed}s)"
            last_report=$elapsed
        fi
        sleep 0.5
    done
    log "Kafka $KAFKA_VERSION ready at $HOST:$port (pid $pid, $((SECONDS - start))s); stop with: $0 stop --dir $rundir"
}

# ---------------------------------------------------------------- stop/status

resolve_rundir() {
    local port=9092 rundir=""
    while (($#)); do
        case "$1" in
            --port) port="${2:?--port needs a value}"; shift 2 ;;
            --port=*) port="${1#*=}"; shift ;;
            --dir) rundir="${2:?--dir needs a value}"; shift 2 ;;
            --dir=*) rundir="${1#*=}"; shift ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
    done
    is_uint "$port" || die "--port must be a number"
    rundir="${rundir:-${CIRT_HUB_KAFKA_DIR:-$KAFKA_CACHE/run-$port}}"
    if [[ -d "$rundir" ]]; then (cd "$rundir" && pwd -P); else echo "$rundir"; fi
}

do_stop() {
    local rundir pid
    rundir="$(resolve_rundir "$@")"
    if [[ ! -f "$rundir/kafka.pid" ]]; then
        log "no broker pid file in $rundir; nothing to stop"
        return 0
    fi
    pid="$(live_pid "$rundir")"
    if [[ -z "$pid" ]]; then
        log "pid in $rundir/kafka.pid is not a running kafka.Kafka for this dir; removing stale pid file"
        rm -f "$rundir/kafka.pid"
        return 0
    fi
    log "stopping broker pid $pid ($rundir)"
    terminate "$pid"
    rm -f "$rundir/kafka.pid"
    log "stopped"
}

do_status() {
    local rundir pid
    rundir="$(resolve_rundir "$@")"
    pid="$(live_pid "$rundir")"
    if [[ -n "$pid" ]]; then
        echo "running: pid $pid, bootstrap $(cat "$rundir/bootstrap" 2>/dev/null || echo '?'), dir $rundir, Kafka $KAFKA_VERSION"
        return 0
    fi
    echo "not running (dir $rundir)"
    return 3
}

# ---------------------------------------------------------------- main

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
    fetch) do_fetch; log "Apache Kafka $KAFKA_VERSION jars in $LIBS_DIR" ;;
    start) do_start "$@" ;;
    stop) do_stop "$@" ;;
    status) do_status "$@" ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) log "unknown command '$cmd'"; usage >&2; exit 2 ;;
esac
