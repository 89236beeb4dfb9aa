#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) for claimwatch development and CI.
#
#   deploy/kafka/kafka.sh start|stop|status|restart|logs [-f] [-n N]|tool CLASS|ALIAS [ARGS...]|help
#
# Needs only Java 17+; Maven only the first time, to assemble Kafka's jars from Maven Central
# into a cache outside the repo.  See deploy/kafka/README.md for the settings (CLAIMWATCH_KAFKA_*).
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
: "${HOME:=$(cd ~ && pwd)}"

KAFKA_VERSION="${CLAIMWATCH_KAFKA_VERSION:-4.1.2}"
PORT="${CLAIMWATCH_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${CLAIMWATCH_KAFKA_CONTROLLER_PORT:-9093}"
CACHE_DIR="${CLAIMWATCH_KAFKA_CACHE:-$HOME/.cache/claimwatch/kafka-$KAFKA_VERSION}"
DATA_DIR="${CLAIMWATCH_KAFKA_DATA:-$HOME/.cache/claimwatch/kafka-data-$PORT}"
RUN_DIR="${CLAIMWATCH_KAFKA_LOG_DIR:-$(dirname -- "$DATA_DIR")/kafka-run-$PORT}"
START_TIMEOUT="${CLAIMWATCH_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${CLAIMWATCH_KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${CLAIMWATCH_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
EXTRA_JVM_OPTS="${CLAIMWATCH_KAFKA_JVM_OPTS:-}"
MVN_EXTRA_ARGS="${CLAIMWATCH_KAFKA_MVN_ARGS:-}"
RESET="${CLAIMWATCH_KAFKA_RESET:-0}"

# Absolute paths without a trailing slash: Kafka resolves relative ones against its own cwd,
# and the pid check compares command lines.
abspath() {
  local p=$1
  [[ "$p" == /* ]] || p="$PWD/$p"
  while [[ "$p" == */ && "$p" != / ]]; do p=${p%/}; done
  printf '%s\n' "$p"
}
CACHE_DIR=$(abspath "$CACHE_DIR")
DATA_DIR=$(abspath "$DATA_DIR")
RUN_DIR=$(abspath "$RUN_DIR")

LIB_DIR="$CACHE_DIR/libs"
CACHE_MARKER="$CACHE_DIR/.assembled"
PID_FILE="$RUN_DIR/kafka.pid"
PROPS_FILE="$RUN_DIR/server.properties"
VERSION_FILE="$RUN_DIR/kafka.version"
BROKER_LOG="$RUN_DIR/server.log"
JVM_OUT="$RUN_DIR/kafka.out"
GC_LOG="$RUN_DIR/gc.log"
TOOLS_CONFIG="$RUN_DIR/tools-client.properties"
META_FILE="$DATA_DIR/meta.properties"
# Which Kafka version last ran on the data dir (Kafka ignores plain files in its log dirs).
DATA_VERSION_FILE="$DATA_DIR/.claimwatch-kafka-version"

JAVA=""
BROKER_PID=""
STALE_PID=0

# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
say() { printf 'kafka.sh: %s\n' "$*"; }
warn() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
# elapsed <start_ms> -> "12.3 s"
elapsed() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_port() { is_uint "$1" && (($1 > 0 && $1 < 65536)); }

check_settings() {
  is_port "$PORT" \
    || die "CLAIMWATCH_KAFKA_PORT='$PORT' is not a port number"
  is_port "$CONTROLLER_PORT" \
    || die "CLAIMWATCH_KAFKA_CONTROLLER_PORT='$CONTROLLER_PORT' is not a port number"
  ((PORT != CONTROLLER_PORT)) \
    || die "CLAIMWATCH_KAFKA_PORT and CLAIMWATCH_KAFKA_CONTROLLER_PORT are both $PORT: they must differ"
  is_uint "$START_TIMEOUT" || die "CLAIMWATCH_KAFKA_START_TIMEOUT='$START_TIMEOUT' is not a number of seconds"
  is_uint "$STOP_TIMEOUT" || die "CLAIMWATCH_KAFKA_STOP_TIMEOUT='$STOP_TIMEOUT' is not a number of seconds"
  [[ "$KAFKA_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([.-][A-Za-z0-9.-]+)?$ ]] \
    || die "CLAIMWATCH_KAFKA_VERSION='$KAFKA_VERSION' does not look like a Kafka version (e.g. 4.1.2)"
}

# Is something accepting TCP connections on 127.0.0.1:<port>?
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Who listens on <port> (for error messages); empty when unknown.
port_owner() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "( sport = :$1 )" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -1
}

# Alive and not a zombie.  A JVM's main thread can be a zombie while its other threads are
# still exiting (and still hold the sockets): that counts as alive until the last one is gone.
pid_alive() {
  local pid=$1 state tasks
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    if [[ "$state" == "Z" ]]; then
      tasks=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
      ((tasks > 1)) || return 1
    fi
  fi
  return 0
}

pid_cmdline() {
  if [[ -r "/proc/$1/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
  else
    ps -o args= -p "$1" 2>/dev/null || true
  fi
}

# Is <pid> the broker this script started for this run dir (guards against pid reuse)?
is_our_broker() {
  local pid=$1
  pid_alive "$pid" || return 1
  [[ "$(pid_cmdline "$pid")" == *"kafka.Kafka $PROPS_FILE"* ]]
}

# Print the pid of our running broker, or nothing.  A stale pid file is removed.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid=$(tr -dc '0-9' <"$PID_FILE" 2>/dev/null || true)
  if [[ -n "$pid" ]] && is_our_broker "$pid"; then
    printf '%s\n' "$pid"
    return 0
  fi
  rm -f "$PID_FILE"
  STALE_PID=1
  warn "removed stale pid file $PID_FILE (pid ${pid:-?} is not a running broker: it crashed or was killed)"
}

# Serialise start/stop/restart for one run dir (fd 9) so two callers cannot race.
lock_run_dir() {
  mkdir -p "$RUN_DIR"
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$RUN_DIR/.lock"
  if ! flock -n 9; then
    say "another kafka.sh is starting or stopping the broker on port $PORT; waiting for it"
    flock 9
  fi
}

# ---------------------------------------------------------------------------------------------
# prerequisites
# ---------------------------------------------------------------------------------------------
find_java() {
  [[ -n "$JAVA" ]] && return 0
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    JAVA="$(command -v java)"
  else
    die "java not found: install OpenJDK 17 (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
  fi
  local line major
  line=$("$JAVA" -version 2>&1 | head -1 || true)
  major=$(sed -n 's/.*version "\([0-9][0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' <<<"$line")
  # "1.8.0_x" -> 8, "17.0.15" -> 17
  if [[ "$major" == 1\ * ]]; then major=${major#1 }; else major=${major%% *}; fi
  is_uint "${major:-x}" || die "cannot tell the version of $JAVA ('$line'): Kafka $KAFKA_VERSION needs Java 17 or newer"
  ((major >= 17)) || die "$JAVA is Java $major: Kafka $KAFKA_VERSION needs Java 17 or newer (apt-get install openjdk-17-jre-headless, or set JAVA_HOME)"
}

# ---------------------------------------------------------------------------------------------
# assembly: Kafka's jars from Maven Central into $CACHE_DIR/libs, once per version
# ---------------------------------------------------------------------------------------------
cache_key() {
  { printf 'kafka %s\n' "$KAFKA_VERSION"; cat "$SCRIPT_DIR/pom.xml"; } | sha256sum | cut -c1-16
}

cache_complete() {
  [[ -f "$CACHE_MARKER" ]] && [[ "$(cat "$CACHE_MARKER" 2>/dev/null)" == "$(cache_key)" ]] \
    && [[ -f "$LIB_DIR/kafka_2.13-$KAFKA_VERSION.jar" ]]
}

assemble() {
  cache_complete && return 0
  command -v mvn >/dev/null 2>&1 \
    || die "mvn not found: Maven is needed once to download Kafka $KAFKA_VERSION into $CACHE_DIR (apt-get install maven)"
  mkdir -p "$CACHE_DIR"
  if command -v flock >/dev/null 2>&1; then
    exec 8>"$CACHE_DIR/.lock"
    if ! flock -n 8; then
      say "another kafka.sh is assembling Kafka $KAFKA_VERSION; waiting for it"
      flock 8
    fi
    if cache_complete; then exec 8>&-; return 0; fi
  fi
  local t0 partial="$CACHE_DIR/libs.partial" mvn_log="$CACHE_DIR/mvn.log"
  t0=$(now_ms)
  say "assembling Apache Kafka $KAFKA_VERSION from Maven Central into $CACHE_DIR (once per version)"
  rm -rf "$partial" "$CACHE_MARKER"
  cp "$SCRIPT_DIR/pom.xml" "$CACHE_DIR/pom.xml"
  # shellcheck disable=SC2086  # MVN_EXTRA_ARGS is a list of arguments on purpose
  if ! (cd "$CACHE_DIR" && mvn -B -q -ntp -f "$CACHE_DIR/pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" \
    -DincludeScope=runtime -DoutputDirectory="$partial" \
    $MVN_EXTRA_ARGS dependency:copy-dependencies) >"$mvn_log" 2>&1 8>&- 9>&-; then
    tail -n 30 "$mvn_log" >&2 || true
    die "Maven could not assemble Kafka $KAFKA_VERSION (full log: $mvn_log). Is the version on Maven Central (CLAIMWATCH_KAFKA_VERSION) and Maven Central reachable?"
  fi
  local jar
  for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar"; do
    [[ -f "$partial/$jar" ]] || die "assembly of Kafka $KAFKA_VERSION is missing $jar (see $mvn_log)"
  done
  compgen -G "$partial/log4j-core-*.jar" >/dev/null || die "assembly is missing log4j-core (see $mvn_log)"
  rm -rf "$LIB_DIR"
  mv "$partial" "$LIB_DIR"
  cache_key >"$CACHE_MARKER"
  say "assembled Kafka $KAFKA_VERSION ($(find "$LIB_DIR" -name '*.jar' | wc -l) jars, $(du -sh "$LIB_DIR" | cut -f1)) in $(elapsed "$t0")"
  if [[ -e /proc/self/fd/8 ]]; then exec 8>&-; fi
}

# Run a Kafka command-line class with the cached classpath, tuned for a short-lived JVM.
run_tool() {
  local cls=$1
  shift
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/tools-log4j2.properties" \
    -cp "$LIB_DIR/*" "$cls" "$@" 9>&- 8>&-
}

# ---------------------------------------------------------------------------------------------
# configuration and storage
# ---------------------------------------------------------------------------------------------
sed_escape() { printf '%s' "$1" | sed -e 's/[\/&|\\]/\\&/g'; }

render_properties() {
  mkdir -p "$RUN_DIR"
  sed -e "s|@PORT@|$PORT|g" \
    -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$(sed_escape "$DATA_DIR")|g" \
    "$SCRIPT_DIR/server.properties.template" >"$PROPS_FILE.tmp"
  mv "$PROPS_FILE.tmp" "$PROPS_FILE"
  # Client settings for the readiness check: fail fast instead of retrying for minutes.
  printf '%s\n' 'request.timeout.ms=10000' 'default.api.timeout.ms=15000' \
    'reconnect.backoff.max.ms=1000' >"$TOOLS_CONFIG"
}

new_cluster_id() {
  # Kafka's Uuid: 16 random bytes, URL-safe base64 without padding (22 chars), no leading '-'.
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ "$id" != -* ]] && break
  done
  printf '%s\n' "$id"
}

unusable_data_dir() {
  die "data dir $DATA_DIR is unusable: $1.
  Set CLAIMWATCH_KAFKA_RESET=1 to wipe it and format it anew (its topics are lost),
  or point CLAIMWATCH_KAFKA_DATA at another directory."
}

prepare_data_dir() {
  if [[ "$RESET" == "1" && -e "$DATA_DIR" ]]; then
    local real
    real=$(cd "$DATA_DIR" && pwd -P)
    case "$real" in
      / | "$(cd "$HOME" && pwd -P)" | "$(cd "$SCRIPT_DIR/../.." && pwd -P)" | "$SCRIPT_DIR")
        die "CLAIMWATCH_KAFKA_RESET=1 refuses to wipe $DATA_DIR ($real): set CLAIMWATCH_KAFKA_DATA to a directory of its own" ;;
    esac
    rm -rf "$DATA_DIR"
    say "CLAIMWATCH_KAFKA_RESET=1: wiped $DATA_DIR"
  fi
  if [[ -f "$META_FILE" ]]; then
    local node version
    node=$(sed -n 's/^node\.id=//p' "$META_FILE" | tr -d '[:space:]')
    version=$(sed -n 's/^version=//p' "$META_FILE" | tr -d '[:space:]')
    [[ "$version" == "1" ]] || unusable_data_dir "its meta.properties has version=${version:-?} (not a KRaft data dir of Kafka 4)"
    [[ "$node" == "1" ]] || unusable_data_dir "it was formatted for node.id=${node:-?}, this broker is node.id=1"
    grep -q '^cluster\.id=' "$META_FILE" || unusable_data_dir "its meta.properties has no cluster.id"
    local last
    last=$(cat "$DATA_VERSION_FILE" 2>/dev/null || true)
    if [[ -n "$last" && "$last" != "$KAFKA_VERSION" ]]; then
      if [[ "$(printf '%s\n%s\n' "$last" "$KAFKA_VERSION" | sort -V | tail -1)" == "$last" ]]; then
        unusable_data_dir "it was last run by Kafka $last, and Kafka $KAFKA_VERSION cannot read metadata written by a newer version"
      fi
      say "data dir $DATA_DIR was last run by Kafka $last; starting it with Kafka $KAFKA_VERSION (upgrade)"
    fi
    return 0
  fi
  if [[ -d "$DATA_DIR" ]] && [[ -n "$(ls -A "$DATA_DIR" 2>/dev/null)" ]]; then
    unusable_data_dir "it is not empty but has no meta.properties (not a Kafka data dir, or a format that was cut short)"
  fi
  mkdir -p "$DATA_DIR"
  local t0 cluster_id out
  t0=$(now_ms)
  cluster_id=$(new_cluster_id)
  if ! out=$(run_tool kafka.tools.StorageTool format --config "$PROPS_FILE" --cluster-id "$cluster_id" 2>&1); then
    printf '%s\n' "$out" >&2
    rm -rf "$DATA_DIR"
    die "formatting $DATA_DIR failed (see above)"
  fi
  say "formatted $DATA_DIR (cluster id $cluster_id) in $(elapsed "$t0")"
}

# ---------------------------------------------------------------------------------------------
# broker process
# ---------------------------------------------------------------------------------------------
launch() {
  local gc_opts="-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent"
  # shellcheck disable=SC2086  # option lists are split on purpose
  nohup setsid "$JAVA" -server $HEAP_OPTS $gc_opts -XX:MaxInlineLevel=15 -XX:+ExitOnOutOfMemoryError \
    -Xshare:auto -Djava.awt.headless=true -Djdk.nio.maxCachedBufferSize=1048576 \
    "-Xlog:gc*:file=$GC_LOG:time,tags:filecount=2,filesize=10M" \
    -Dkafka.logs.dir="$RUN_DIR" \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.properties" \
    $EXTRA_JVM_OPTS \
    -cp "$LIB_DIR/*" kafka.Kafka "$PROPS_FILE" \
    </dev/null >>"$JVM_OUT" 2>&1 8>&- 9>&- &
  BROKER_PID=$!
  printf '%s\n' "$BROKER_PID" >"$PID_FILE"
  printf '%s\n' "$KAFKA_VERSION" >"$VERSION_FILE"
  printf '%s\n' "$KAFKA_VERSION" >"$DATA_VERSION_FILE"
}

# Does the broker answer an ApiVersions + metadata round trip?  $1: at most this many seconds.
broker_answers() {
  local limit=${1:-30}
  ((limit > 30)) && limit=30
  ((limit < 5)) && limit=5
  timeout "$limit" "$JAVA" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$SCRIPT_DIR/tools-log4j2.properties" \
    -cp "$LIB_DIR/*" org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "127.0.0.1:$PORT" --command-config "$TOOLS_CONFIG" \
    >"$RUN_DIR/readiness.out" 2>&1 8>&- 9>&-
}

show_log_tail() {
  local n=${1:-40}
  if [[ -s "$BROKER_LOG" ]]; then
    warn "last $n lines of $BROKER_LOG:"
    tail -n "$n" "$BROKER_LOG" >&2 || true
  fi
  if [[ -s "$JVM_OUT" ]]; then
    warn "last $n lines of $JVM_OUT (JVM output):"
    tail -n "$n" "$JVM_OUT" >&2 || true
  fi
}

storage_hint() {
  local pattern='meta\.properties|cluster\.id|InconsistentClusterId|metadata\.version|MetadataVersion|feature|kraft\.version|directory\.id|bootstrap\.checkpoint|log dir|Corrupt|MetadataParseException|UnsupportedVersionException|deserialize'
  if [[ -s "$BROKER_LOG" ]] && tail -n 300 "$BROKER_LOG" | grep -E '(ERROR|FATAL|Exception)' | grep -Eiq "$pattern"; then
    warn "the errors above concern the data dir $DATA_DIR (formatted by another Kafka version or damaged?):"
    warn "  CLAIMWATCH_KAFKA_RESET=1 $0 start   wipes it and formats it anew (its topics are lost)"
  fi
}

start_failed() {
  local why=$1
  show_log_tail 40
  storage_hint
  die "$why"
}

wait_ready() {
  local pid=$1 t0=$2 deadline now rc
  deadline=$(($(now_ms) + START_TIMEOUT * 1000))
  while :; do
    if ! pid_alive "$pid"; then
      rc=""
      if [[ "$pid" == "${BROKER_PID:-}" ]]; then
        rc=0
        wait "$pid" 2>/dev/null || rc=$?
      fi
      rm -f "$PID_FILE"
      start_failed "the broker exited during start${rc:+ (exit code $rc)} after $(elapsed "$t0") (log: $BROKER_LOG)"
    fi
    if port_open "$PORT" && broker_answers $(((deadline - $(now_ms)) / 1000 + 1)); then
      return 0
    fi
    now=$(now_ms)
    if ((now > deadline)); then
      show_log_tail 40
      storage_hint
      if [[ -s "$RUN_DIR/readiness.out" ]]; then
        warn "last readiness check (BrokerApiVersionsCommand) said:"
        tail -n 5 "$RUN_DIR/readiness.out" >&2
      fi
      warn "the broker (pid $pid) did not answer on 127.0.0.1:$PORT within ${START_TIMEOUT} s; stopping it"
      stop_pid "$pid" 10 >/dev/null 2>&1 || true
      rm -f "$PID_FILE"
      die "Kafka did not become ready within CLAIMWATCH_KAFKA_START_TIMEOUT=${START_TIMEOUT} s (log: $BROKER_LOG)"
    fi
    sleep 0.5
  done
}

# stop_pid <pid> <timeout s>: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local pid=$1 limit=$2 deadline
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$(($(now_ms) + limit * 1000))
  while pid_alive "$pid"; do
    if (($(now_ms) > deadline)); then
      warn "broker (pid $pid) did not shut down within $limit s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      local _
      for _ in $(seq 1 50); do
        pid_alive "$pid" || break
        sleep 0.1
      done
      break
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------------------------
cmd_start() {
  check_settings
  lock_run_dir
  local pid t0
  running_pid >/dev/null # removes a stale pid file (sets STALE_PID in this shell)
  pid=$(running_pid)
  if [[ -n "$pid" ]]; then
    if port_open "$PORT"; then
      say "already running: pid $pid, 127.0.0.1:$PORT (Kafka $(cat "$VERSION_FILE" 2>/dev/null || echo '?')); nothing to do"
      return 0
    fi
    find_java
    say "broker pid $pid is up but not yet answering on 127.0.0.1:$PORT; waiting for it"
    t0=$(now_ms)
    wait_ready "$pid" "$t0"
    say "ready after $(elapsed "$t0"): 127.0.0.1:$PORT (pid $pid)"
    return 0
  fi
  local p owner _
  for p in "$PORT" "$CONTROLLER_PORT"; do
    # A broker that was just killed may hold its sockets for a moment longer.
    for _ in $(seq 1 20); do
      port_open "$p" || break
      sleep 0.25
    done
    if port_open "$p"; then
      owner=$(port_owner "$p")
      die "port $p on 127.0.0.1 is already in use${owner:+ by $owner}, not by a broker of this script for $RUN_DIR.
  Stop that process, or pick free ports with CLAIMWATCH_KAFKA_PORT / CLAIMWATCH_KAFKA_CONTROLLER_PORT."
    fi
  done

  find_java
  assemble
  render_properties
  prepare_data_dir

  t0=$(now_ms)
  # Each start gets fresh server.log / kafka.out; the previous run's are kept as *.prev.
  if [[ -s "$BROKER_LOG" ]]; then mv -f "$BROKER_LOG" "$BROKER_LOG.prev"; fi
  if [[ -s "$JVM_OUT" ]]; then mv -f "$JVM_OUT" "$JVM_OUT.prev"; fi
  rm -f "$RUN_DIR/readiness.out"
  launch
  if ((STALE_PID)); then
    say "the last broker did not shut down cleanly: the controller waits out its session (broker.session.timeout.ms, 9 s) before this one is ready"
  fi
  say "starting Kafka $KAFKA_VERSION (pid $BROKER_PID) on 127.0.0.1:$PORT, controller 127.0.0.1:$CONTROLLER_PORT; data $DATA_DIR; log $BROKER_LOG"
  wait_ready "$BROKER_PID" "$t0"
  say "ready in $(elapsed "$t0"): bootstrap.servers=127.0.0.1:$PORT (pid $BROKER_PID)"
}

cmd_stop() {
  check_settings
  lock_run_dir
  local pid t0
  pid=$(running_pid)
  if [[ -z "$pid" ]]; then
    say "not running (port $PORT); nothing to stop"
    return 0
  fi
  t0=$(now_ms)
  say "stopping broker pid $pid (port $PORT)"
  stop_pid "$pid" "$STOP_TIMEOUT"
  if pid_alive "$pid"; then
    die "broker pid $pid is still alive after SIGKILL"
  fi
  rm -f "$PID_FILE"
  say "stopped in $(elapsed "$t0")"
}

cmd_status() {
  check_settings
  local pid owner
  pid=$(running_pid)
  if [[ -n "$pid" ]]; then
    if port_open "$PORT"; then
      say "running: pid $pid, 127.0.0.1:$PORT (controller $CONTROLLER_PORT), Kafka $(cat "$VERSION_FILE" 2>/dev/null || echo '?'), data $DATA_DIR, log $BROKER_LOG"
      return 0
    fi
    say "starting or not answering: pid $pid is up but 127.0.0.1:$PORT accepts no connections (log $BROKER_LOG)"
    return 1
  fi
  if port_open "$PORT"; then
    owner=$(port_owner "$PORT")
    say "not running (no broker of this script for $RUN_DIR), but port $PORT is in use${owner:+ by $owner}"
    return 1
  fi
  say "not running (port $PORT)"
  return 1
}

cmd_logs() {
  check_settings
  local follow=0 lines=100
  while (($#)); do
    case "$1" in
      -f | --follow) follow=1 ;;
      -n) shift; lines=${1:-100} ;;
      -n*) lines=${1#-n} ;;
      *) die "logs: unknown option '$1' (use: logs [-f] [-n N])" ;;
    esac
    shift
  done
  [[ -f "$BROKER_LOG" ]] || die "no broker log yet at $BROKER_LOG (never started with these settings?)"
  if ((follow)); then
    exec tail -n "$lines" -F "$BROKER_LOG"
  fi
  tail -n "$lines" "$BROKER_LOG"
}

cmd_tool() {
  (($#)) || die "tool: name a class or one of: topics, console-producer, console-consumer, consumer-groups, api-versions, get-offsets"
  check_settings
  local cls=$1
  shift
  case "$cls" in
    topics) cls=org.apache.kafka.tools.TopicCommand ;;
    console-producer) cls=org.apache.kafka.tools.ConsoleProducer ;;
    console-consumer) cls=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    consumer-groups) cls=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    api-versions) cls=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    get-offsets) cls=org.apache.kafka.tools.GetOffsetShell ;;
  esac
  find_java
  assemble
  run_tool "$cls" "$@"
}

usage() {
  cat <<EOF
usage: $0 COMMAND

  start      assemble Kafka $KAFKA_VERSION if needed, format the data dir once, start the
             broker on 127.0.0.1:$PORT and wait until it answers (no-op when running)
  stop       SIGTERM, wait up to ${STOP_TIMEOUT} s, then SIGKILL (no-op when not running)
  restart    stop, then start
  status     running or not; exit code 0 when running and answering, 1 otherwise
  logs       last lines of the broker log: logs [-f] [-n N]
  tool       run a Kafka CLI class with the cached jars, e.g.
             $0 tool topics --bootstrap-server 127.0.0.1:$PORT --list
             (aliases: topics, console-producer, console-consumer, consumer-groups,
              api-versions, get-offsets; or a full class name)

settings (environment): CLAIMWATCH_KAFKA_VERSION=$KAFKA_VERSION CLAIMWATCH_KAFKA_PORT=$PORT
  CLAIMWATCH_KAFKA_CONTROLLER_PORT=$CONTROLLER_PORT CLAIMWATCH_KAFKA_DATA=$DATA_DIR
  CLAIMWATCH_KAFKA_LOG_DIR=$RUN_DIR CLAIMWATCH_KAFKA_CACHE=$CACHE_DIR
  CLAIMWATCH_KAFKA_START_TIMEOUT=$START_TIMEOUT CLAIMWATCH_KAFKA_STOP_TIMEOUT=$STOP_TIMEOUT
  CLAIMWATCH_KAFKA_HEAP_OPTS="$HEAP_OPTS" CLAIMWATCH_KAFKA_JVM_OPTS CLAIMWATCH_KAFKA_MVN_ARGS
  CLAIMWATCH_KAFKA_RESET=1 (wipe and reformat the data dir on start)
EOF
}

main() {
  local cmd=${1:-help}
  (($#)) && shift
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    tool) cmd_tool "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
