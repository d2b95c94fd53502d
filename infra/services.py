#!/usr/bin/env python3
"""Install, start, stop and report the local services tradestream needs, all on 127.0.0.1.

Kafka (single-node KRaft broker fetched from Maven Central), PostgreSQL 15 (with pg_partman) and Redis 7.
Standard library only: this runs with the system python3 before any virtualenv exists.

    infra/up              install what is missing, start what is not running (idempotent)
    infra/down            stop what runs
    infra/status [--json] report each service; exit code 0 only when all three answer

Tests import it as `infra.services` and call `ensure_up()` to get the endpoints.
Configuration (environment): TRADESTREAM_STATE_DIR (default <repo>/.tradestream),
TRADESTREAM_KAFKA_PORT (19092), TRADESTREAM_KAFKA_CONTROLLER_PORT (19093), TRADESTREAM_POSTGRES_PORT (15432),
TRADESTREAM_REDIS_PORT (16379).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_LIB = Path("/usr/lib/postgresql/15/lib")
PG_OS_USER = "postgres"
DB_NAME = "tradestream"
DB_USER = "tradestream"
HOST = "127.0.0.1"

KAFKA_JVM_HEAP = ("-Xms512m", "-Xmx512m")  # machines have 2 cores; a dev broker needs little heap
KAFKA_JVM_GC = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
                "-XX:+ExplicitGCInvokesConcurrent")
"""Kafka's own defaults (bin/kafka-run-class.sh): G1's default 200 ms pause goal let young collections take ~20 ms,
which every order in flight waited out."""
KAFKA_START_TIMEOUT_S = 90.0
POSTGRES_START_TIMEOUT_S = 60
REDIS_START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 30
JKS_PASSWORD = "changeit"


class ServiceError(RuntimeError):
    """A service could not be installed, started or stopped; the message names it and its log file."""

    def __init__(self, service: str, problem: str, log_file: Path | None = None) -> None:
        message = f"{service}: {problem}"
        if log_file is not None:
            message += f"\n  log file: {log_file}{_log_tail(log_file)}"
        super().__init__(message)
        self.service = service
        self.log_file = log_file


@dataclasses.dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    postgres_dsn: str
    redis_url: str
    state_dir: Path


@dataclasses.dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool  # a live process recorded in our pid file
    answers: bool  # it answered a real protocol request (Kafka Metadata, pg_isready, Redis PING)
    pid: int | None
    address: str
    log_file: Path
    data_dir: Path


@dataclasses.dataclass(frozen=True)
class Config:
    state_dir: Path
    kafka_port: int
    kafka_controller_port: int
    postgres_port: int
    redis_port: int

    @classmethod
    def from_env(cls) -> Config:
        state_dir = Path(os.environ.get("TRADESTREAM_STATE_DIR") or REPO_ROOT / ".tradestream")
        return cls(
            state_dir=state_dir.expanduser().resolve(),
            kafka_port=_port_from_env("TRADESTREAM_KAFKA_PORT", 19092),
            kafka_controller_port=_port_from_env("TRADESTREAM_KAFKA_CONTROLLER_PORT", 19093),
            postgres_port=_port_from_env("TRADESTREAM_POSTGRES_PORT", 15432),
            redis_port=_port_from_env("TRADESTREAM_REDIS_PORT", 16379),
        )

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def kafka_lib(self) -> Path:
        return self.kafka_dir / "lib"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def kafka_properties(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def postgres_dir(self) -> Path:
        return self.state_dir / "postgres"  # owned by the postgres OS user; also holds the unix socket

    @property
    def postgres_data(self) -> Path:
        return self.postgres_dir / "data"

    @property
    def redis_dir(self) -> Path:
        return self.state_dir / "redis"

    def log_file(self, service: str) -> Path:
        return self.logs_dir / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def endpoints(self) -> Endpoints:
        return Endpoints(
            kafka_bootstrap=f"{HOST}:{self.kafka_port}",
            postgres_dsn=f"postgresql://{DB_USER}@{HOST}:{self.postgres_port}/{DB_NAME}",
            redis_url=f"redis://{HOST}:{self.redis_port}/0",
            state_dir=self.state_dir,
        )


def _port_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ServiceError("config", f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


@dataclasses.dataclass(frozen=True)
class _Service:
    name: str  # stem of its log and pid files
    title: str
    ports: tuple[int, ...]
    address: str
    data_dir: Path
    # Only our own process has this in its command line: guards against a recycled pid in a stale pid file.
    cmdline_marker: str
    probe: Callable[[], bool]
    port_env: str


def _services(cfg: Config) -> list[_Service]:
    endpoints = cfg.endpoints()
    return [
        _Service(
            name="kafka",
            title="Kafka",
            ports=(cfg.kafka_port, cfg.kafka_controller_port),
            address=endpoints.kafka_bootstrap,
            data_dir=cfg.kafka_data,
            cmdline_marker=str(cfg.kafka_properties),
            probe=lambda: _kafka_answers(cfg.kafka_port),
            port_env="TRADESTREAM_KAFKA_PORT / TRADESTREAM_KAFKA_CONTROLLER_PORT",
        ),
        _Service(
            name="postgres",
            title="PostgreSQL",
            ports=(cfg.postgres_port,),
            address=endpoints.postgres_dsn,
            data_dir=cfg.postgres_data,
            cmdline_marker=str(cfg.postgres_data),
            probe=lambda: _postgres_answers(cfg.postgres_port),
            port_env="TRADESTREAM_POSTGRES_PORT",
        ),
        _Service(
            name="redis",
            title="Redis",
            ports=(cfg.redis_port,),
            address=endpoints.redis_url,
            data_dir=cfg.redis_dir,
            cmdline_marker=f"redis-server {HOST}:{cfg.redis_port}",  # redis rewrites its title to this
            probe=lambda: _redis_answers(cfg.redis_port),
            port_env="TRADESTREAM_REDIS_PORT",
        ),
    ]


def _service(cfg: Config, name: str) -> _Service:
    return next(service for service in _services(cfg) if service.name == name)


# ----------------------------------------------------------------------------------------------------------
# Public API


def ensure_up() -> Endpoints:
    """Install what is missing and start whatever is not running; return where the services listen."""
    cfg = Config.from_env()
    _make_state_dirs(cfg)
    with _state_lock(cfg):
        for service in _services(cfg):
            if _running_pid(cfg, service) is None:
                _require_free_ports(cfg, service)
        _install_missing_packages(cfg)
        kafka_pid = _launch_kafka(cfg)  # the JVM boots while Postgres and Redis start
        _ensure_postgres(cfg)
        _ensure_redis(cfg)
        _wait_for_kafka(cfg, kafka_pid)
    return cfg.endpoints()


def ensure_down() -> None:
    """Stop every service that runs from our pid files; tolerant of services that are not running."""
    cfg = Config.from_env()
    if not cfg.state_dir.is_dir():
        return
    _make_state_dirs(cfg)
    with _state_lock(cfg):
        _stop_kafka(cfg)
        _stop_redis(cfg)
        _stop_postgres(cfg)


def status() -> list[ServiceStatus]:
    """Report each service: whether our process runs, and whether something answers on its port."""
    cfg = Config.from_env()
    result = []
    for service in _services(cfg):
        pid = _running_pid(cfg, service)
        result.append(
            ServiceStatus(
                name=service.name,
                running=pid is not None,
                answers=service.probe(),
                pid=pid,
                address=service.address,
                log_file=cfg.log_file(service.name),
                data_dir=service.data_dir,
            )
        )
    return result


# ----------------------------------------------------------------------------------------------------------
# State dir, pid files, ports


def _make_state_dirs(cfg: Config) -> None:
    for directory in (cfg.logs_dir, cfg.run_dir, cfg.kafka_dir, cfg.redis_dir):
        directory.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def _state_lock(cfg: Config) -> Iterator[None]:
    """Serialise up/down runs (e.g. parallel test sessions) so a service is never started twice."""
    with (cfg.run_dir / "infra.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is an exited child of this very process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _running_pid(cfg: Config, service: _Service) -> int | None:
    pid = _read_pid(cfg.pid_file(service.name))
    if pid is None or not _pid_alive(pid) or service.cmdline_marker not in _cmdline(pid):
        return None
    return pid


def _remove_stale_pid_file(cfg: Config, service: _Service) -> None:
    if _running_pid(cfg, service) is None:
        cfg.pid_file(service.name).unlink(missing_ok=True)


def _require_free_ports(cfg: Config, service: _Service) -> None:
    for port in service.ports:
        with socket.socket() as sock:
            # SO_REUSEADDR: ignore TIME_WAIT leftovers of our previous run; a live listener still blocks bind.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError as error:
                raise ServiceError(
                    service.title,
                    f"port {HOST}:{port} is already in use by another process (not ours: no live process in "
                    f"{cfg.pid_file(service.name)}); stop it or choose another port with {service.port_env} "
                    f"({error.strerror})",
                ) from None


def _log_tail(log_file: Path) -> str:
    try:
        lines = log_file.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return ""
    return "\n  last lines of the log:\n" + "\n".join(f"    {line}" for line in lines) if lines else ""


def _say(message: str) -> None:
    print(f"[infra] {message}", file=sys.stderr, flush=True)


def _run(cmd: Sequence[str], *, service: str, problem: str, log_file: Path, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> None:
    """Run a setup command, appending its output to log_file; raise a ServiceError naming it when it fails."""
    with log_file.open("ab") as log:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        returncode = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=cwd, env=env, check=False).returncode
    if returncode != 0:
        raise ServiceError(service, f"{problem} (`{' '.join(cmd)}` exited with {returncode})", log_file)


def _terminate(pid: int, timeout_s: float) -> bool:
    """SIGTERM, then SIGKILL after timeout_s. Return whether it stopped gracefully."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_until(lambda: not _pid_alive(pid), timeout_s):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: not _pid_alive(pid), 10.0)
    return False


def _wait_until(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


# ----------------------------------------------------------------------------------------------------------
# Packages


def _install_missing_packages(cfg: Config) -> None:
    missing = _missing_packages(cfg)
    if not missing:
        return
    command = f"apt-get install -y --no-install-recommends {' '.join(missing)}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServiceError("packages", f"missing {', '.join(missing)}; as root on Debian 12 run: {command}")
    log_file = cfg.log_file("apt")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _say(f"installing {', '.join(missing)} with apt-get (log: {log_file})")
    _run(["apt-get", "update"], service="packages", problem="apt-get update failed", log_file=log_file,
         env=env)
    _run(["apt-get", "install", "-y", "--no-install-recommends", *missing], service="packages",
         problem=f"installing {', '.join(missing)} failed", log_file=log_file, env=env)


def _missing_packages(cfg: Config) -> list[str]:
    missing = [package for command, package in (("java", "openjdk-17-jre-headless"), ("mvn", "maven"))
               if shutil.which(command) is None]
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("util-linux")  # runuser: initdb and pg_ctl refuse to run as root
    wanted = ("postgresql-15", "postgresql-15-partman", "redis-server")
    installed = _installed_debian_packages(wanted)
    missing += [package for package in wanted if package not in installed]
    if shutil.which("setfacl") is None and _state_dir_closed_to_others(cfg):
        missing.append("acl")  # for _grant_postgres_traverse
    if not _python_can_make_venvs():
        missing.append("python3-venv")  # `make install` creates the project's virtualenv next
    return missing


def _python_can_make_venvs() -> bool:
    # Debian's python3 lacks ensurepip until python3-venv is installed; `import venv` alone succeeds anyway.
    return subprocess.run([sys.executable, "-c", "import ensurepip"], capture_output=True).returncode == 0


def _installed_debian_packages(packages: Sequence[str]) -> set[str]:
    if shutil.which("dpkg-query") is None:
        return set()
    # Unknown packages make dpkg-query exit 1 but it still reports the known ones.
    output = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages],
                            capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in output.splitlines() if line.endswith(" installed")}


def _state_dir_closed_to_others(cfg: Config) -> bool:
    """Whether a directory on the way to the state dir lacks the execute bit for others (/root is 0700)."""
    return any(not directory.stat().st_mode & 0o001 for directory in _dirs_down_to(cfg.state_dir))


def _dirs_down_to(directory: Path) -> list[Path]:
    """`directory` and its ancestors, outermost first."""
    return [*reversed(directory.parents), directory]


# ----------------------------------------------------------------------------------------------------------
# Kafka


def _launch_kafka(cfg: Config) -> int:
    """Start the broker detached, without waiting for it to serve; return its pid."""
    service = _service(cfg, "kafka")
    pid = _running_pid(cfg, service)
    if pid is not None:
        return pid
    _remove_stale_pid_file(cfg, service)
    _fetch_kafka_jars(cfg)
    _write_kafka_config(cfg)
    if not (cfg.kafka_data / "meta.properties").exists():
        _format_kafka_storage(cfg)
    log_file = cfg.log_file("kafka")
    _say(f"starting Kafka on {service.address} (log: {log_file})")
    with log_file.open("ab") as log:
        log.write(f"\n===== infra: starting Kafka {time.strftime('%Y-%m-%d %H:%M:%S')} =====\n".encode())
        log.flush()
        process = subprocess.Popen(
            [*_kafka_java_command(cfg), "kafka.Kafka", str(cfg.kafka_properties)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cfg.kafka_dir,
            start_new_session=True,  # survives the end of `infra/up` and Ctrl-C in its terminal
        )
    cfg.pid_file("kafka").write_text(f"{process.pid}\n")
    return process.pid


def _kafka_java_command(cfg: Config) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("Kafka", "no `java` on PATH (apt-get install openjdk-17-jre-headless)")
    return [
        java, *KAFKA_JVM_HEAP, *KAFKA_JVM_GC, "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{cfg.kafka_dir / 'log4j.properties'}",
        "-cp", f"{cfg.kafka_lib}/*",
    ]


def _wait_for_kafka(cfg: Config, pid: int) -> None:
    service = _service(cfg, "kafka")
    log_file = cfg.log_file("kafka")
    if not _wait_until(lambda: service.probe() or not _pid_alive(pid), KAFKA_START_TIMEOUT_S, 0.5):
        raise ServiceError("Kafka", f"the broker did not answer on {service.address} within "
                                    f"{KAFKA_START_TIMEOUT_S:.0f} s (pid {pid})", log_file)
    if not service.probe():
        cfg.pid_file("kafka").unlink(missing_ok=True)
        raise ServiceError("Kafka", f"the broker (pid {pid}) exited while starting", log_file)


def _fetch_kafka_jars(cfg: Config) -> None:
    """Fill the lib dir with the broker and its runtime dependencies from Maven Central, once per pom."""
    marker = cfg.kafka_lib / ".complete"
    pom_digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
    if marker.is_file() and marker.read_text().strip() == pom_digest:
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("Kafka", "no `mvn` on PATH (apt-get install maven)")
    shutil.rmtree(cfg.kafka_lib, ignore_errors=True)  # no stale jars of another version on the classpath
    log_file = cfg.log_file("maven")
    _say(f"fetching the Kafka broker jars from Maven Central into {cfg.kafka_lib} (log: {log_file})")
    env = dict(os.environ)
    truststore = _write_java_truststore(cfg)
    if truststore is not None:
        trust_options = (f"-Djavax.net.ssl.trustStore={truststore} -Djavax.net.ssl.trustStoreType=JKS "
                         f"-Djavax.net.ssl.trustStorePassword={JKS_PASSWORD}")
        env["MAVEN_OPTS"] = f"{env.get('MAVEN_OPTS', '')} {trust_options}".strip()
    _run([mvn, "-B", "-q", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
          "-DincludeScope=runtime", f"-DoutputDirectory={cfg.kafka_lib}"],
         service="Kafka", problem="fetching the broker jars with Maven failed", log_file=log_file, env=env)
    marker.write_text(f"{pom_digest}\n")


def _write_java_truststore(cfg: Config) -> Path | None:
    """Let Maven trust exactly the CAs the system bundle holds (the one pip and curl use).

    Java's own cacerts (ca-certificates-java) is built from /etc/ssl/certs/*.pem and can lack CAs that exist
    only in the bundle file, such as an egress proxy's CA; Maven then fails with "PKIX path building failed".
    """
    bundle = ssl.get_default_verify_paths().cafile
    if bundle is None or not Path(bundle).is_file():
        return None
    pem_blocks = re.findall(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----",
                            Path(bundle).read_text(errors="replace"), flags=re.DOTALL)
    if not pem_blocks:
        return None
    truststore = cfg.kafka_dir / "maven-truststore.jks"
    truststore.write_bytes(_jks_truststore([base64.b64decode(block) for block in pem_blocks], JKS_PASSWORD))
    return truststore


def _jks_truststore(certificates: Sequence[bytes], password: str) -> bytes:
    """A Java KeyStore (JKS v2) of trusted X.509 certificates (DER), in the layout JavaKeyStore writes."""

    def java_utf(text: str) -> bytes:  # DataOutput.writeUTF for ASCII text
        raw = text.encode("ascii")
        return struct.pack(">H", len(raw)) + raw

    created_ms = int(time.time() * 1000)
    store = bytearray(struct.pack(">III", 0xFEEDFEED, 2, len(certificates)))
    for index, der in enumerate(certificates):
        store += struct.pack(">I", 2) + java_utf(f"system-ca-{index}") + struct.pack(">q", created_ms)
        store += java_utf("X.509") + struct.pack(">I", len(der)) + der
    store += hashlib.sha1(password.encode("utf-16-be") + b"Mighty Aphrodite" + store).digest()
    return bytes(store)


def _write_kafka_config(cfg: Config) -> None:
    cfg.kafka_data.mkdir(parents=True, exist_ok=True)
    properties = {
        # Single-node KRaft: this one process is both broker and controller, no ZooKeeper.
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{cfg.kafka_controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{cfg.kafka_port},CONTROLLER://{HOST}:{cfg.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{cfg.kafka_port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(cfg.kafka_data),
        "num.partitions": "4",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",  # Faust exactly-once needs transactions on one node
        "transaction.state.log.min.isr": "1",
        # Fewer internal partitions than the default 50: faster first group/transaction on a 2-core machine.
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.num.partitions": "8",
        "auto.create.topics.enable": "false",  # topics are created explicitly; typos must fail loudly
        "group.initial.rebalance.delay.ms": "0",  # tests start consuming at once instead of after 3 s
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    cfg.kafka_properties.write_text(
        "# Generated by infra/services.py on every start; edit it there.\n"
        + "".join(f"{key}={_java_properties_escape(value)}\n" for key, value in properties.items())
    )
    log4j = {
        "log4j.rootLogger": "INFO, file",
        "log4j.appender.file": "org.apache.log4j.RollingFileAppender",
        "log4j.appender.file.File": str(cfg.log_file("kafka")),
        "log4j.appender.file.Append": "true",
        "log4j.appender.file.MaxFileSize": "50MB",
        "log4j.appender.file.MaxBackupIndex": "2",
        "log4j.appender.file.layout": "org.apache.log4j.PatternLayout",
        "log4j.appender.file.layout.ConversionPattern": "[%d] %p %m (%c)%n",
        "log4j.logger.kafka.request.logger": "WARN",
        "log4j.logger.kafka.network.RequestChannel$": "WARN",
    }
    (cfg.kafka_dir / "log4j.properties").write_text(
        "".join(f"{key}={_java_properties_escape(value)}\n" for key, value in log4j.items())
    )


def _java_properties_escape(value: str) -> str:
    return value.replace("\\", "\\\\")


def new_kafka_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """16 random bytes in unpadded URL-safe base64, as org.apache.kafka.common.Uuid.randomUuid makes them.

    Like Kafka's own generator it draws again when the id would start with "-": command-line tools (the
    StorageTool among them) would read such an id as an option, one format in 64.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _format_kafka_storage(cfg: Config) -> None:
    cluster_id = new_kafka_cluster_id()
    _say(f"formatting Kafka KRaft storage in {cfg.kafka_data} (cluster id {cluster_id})")
    # The "=" form keeps the id one token whatever it starts with.
    _run([*_kafka_java_command(cfg), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
          "-c", str(cfg.kafka_properties)],
         service="Kafka", problem="formatting the KRaft storage failed", log_file=cfg.log_file("kafka"))


def _kafka_answers(port: int, timeout_s: float = 2.0) -> bool:
    """Send a real Metadata request (v4, no topics) and check that the broker lists itself.

    A KRaft broker serves requests only once it has caught up with the metadata log and is unfenced, so this
    proves it is ready for clients, unlike a bare port check.
    """
    correlation_id = 7
    client_id = b"tradestream-infra"
    # Request header v1 (api_key 3 = Metadata, version 4); body: no topics, allow_auto_topic_creation=false.
    header = struct.pack(">hhih", 3, 4, correlation_id, len(client_id)) + client_id
    body = header + struct.pack(">i?", 0, False)
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
            response = _recv_exactly(sock, size)
            # Response header: correlation_id; body v4: throttle_time_ms, brokers array length, ...
            answered_id, _throttle_ms, broker_count = struct.unpack_from(">iii", response)
    except (OSError, struct.error):
        return False
    return int(answered_id) == correlation_id and int(broker_count) >= 1


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return bytes(data)


def _stop_kafka(cfg: Config) -> None:
    service = _service(cfg, "kafka")
    pid = _running_pid(cfg, service)
    if pid is not None:
        _say(f"stopping Kafka (pid {pid})")
        if not _terminate(pid, STOP_TIMEOUT_S):
            _say(f"Kafka did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM; killed it")
    _remove_stale_pid_file(cfg, service)


# ----------------------------------------------------------------------------------------------------------
# PostgreSQL


def _as_postgres_user(cmd: Sequence[str]) -> list[str]:
    # initdb and pg_ctl refuse to run as root: run them as the postgres OS user the Debian package creates.
    return ["runuser", "-u", PG_OS_USER, "--", *cmd] if os.geteuid() == 0 else list(cmd)


def _ensure_postgres(cfg: Config) -> None:
    service = _service(cfg, "postgres")
    log_file = cfg.log_file("postgres")
    if _running_pid(cfg, service) is None:
        _remove_stale_pid_file(cfg, service)
        _prepare_postgres_dirs(cfg)
        if not (cfg.postgres_data / "PG_VERSION").exists():
            _say(f"initialising a PostgreSQL cluster in {cfg.postgres_data}")
            _run(_as_postgres_user([str(PG_BIN / "initdb"), "-D", str(cfg.postgres_data), "-U", DB_USER,
                                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"]),
                 service="PostgreSQL", problem="initdb failed", log_file=log_file, cwd=cfg.postgres_dir)
            with (cfg.postgres_data / "postgresql.conf").open("a") as conf:
                conf.write("\ninclude_if_exists = 'tradestream.conf'\n")
        _write_postgres_config(cfg)
        _say(f"starting PostgreSQL on {HOST}:{cfg.postgres_port} (log: {log_file})")
        _run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "start", "-D", str(cfg.postgres_data), "-l",
                                str(log_file), "-w", "-t", str(POSTGRES_START_TIMEOUT_S)]),
             service="PostgreSQL", problem="pg_ctl start failed", log_file=log_file, cwd=cfg.postgres_dir)
        postmaster_pid = _read_pid(cfg.postgres_data / "postmaster.pid")
        if postmaster_pid is None:
            raise ServiceError("PostgreSQL", "started but wrote no postmaster.pid", log_file)
        cfg.pid_file("postgres").write_text(f"{postmaster_pid}\n")
    if not _wait_until(service.probe, POSTGRES_START_TIMEOUT_S):
        raise ServiceError("PostgreSQL", f"no connections accepted on {HOST}:{cfg.postgres_port}", log_file)
    _create_database(cfg)


def _prepare_postgres_dirs(cfg: Config) -> None:
    log_file = cfg.log_file("postgres")
    cfg.postgres_dir.mkdir(parents=True, exist_ok=True)
    log_file.touch()
    if os.geteuid() != 0:
        return
    # The server runs as the postgres OS user: it owns its dir (data + socket) and writes its own log file.
    shutil.chown(cfg.postgres_dir, PG_OS_USER, PG_OS_USER)
    shutil.chown(log_file, PG_OS_USER, PG_OS_USER)
    _grant_postgres_traverse([*_dirs_down_to(cfg.state_dir), cfg.logs_dir])


def _grant_postgres_traverse(directories: Sequence[Path]) -> None:
    """Give the postgres user search (x) permission, and nothing more, where it lacks it (/root is 0700)."""
    for directory in directories:  # outermost first: checking a dir needs its parents to be traversable
        check = subprocess.run(_as_postgres_user(["test", "-x", str(directory)]), check=False)
        if check.returncode == 0:
            continue
        if shutil.which("setfacl") is None:
            raise ServiceError("PostgreSQL", f"the postgres user cannot reach {directory} and `setfacl` is "
                                             "missing (apt-get install acl); or set TRADESTREAM_STATE_DIR")
        subprocess.run(["setfacl", "-m", f"u:{PG_OS_USER}:x", str(directory)], check=True)
        _say(f"granted the {PG_OS_USER} user traverse-only permission on {directory} "
             f"(setfacl -m u:{PG_OS_USER}:x) so it can reach its data dir")


def _write_postgres_config(cfg: Config) -> None:
    def quoted(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    # timescaledb must be preloaded when installed; otherwise nothing is.
    preload = "timescaledb" if (PG_LIB / "timescaledb.so").exists() else ""
    conf = cfg.postgres_data / "tradestream.conf"
    conf.write_text(
        "# Generated by infra/services.py on every start; edit it there.\n"
        f"listen_addresses = {quoted(HOST)}\n"
        f"port = {cfg.postgres_port}\n"
        f"unix_socket_directories = {quoted(str(cfg.postgres_dir))}\n"
        f"shared_preload_libraries = {quoted(preload)}\n"
    )
    if os.geteuid() == 0:
        shutil.chown(conf, PG_OS_USER, PG_OS_USER)


def _postgres_answers(port: int) -> bool:
    pg_isready = PG_BIN / "pg_isready"
    if not pg_isready.exists():
        return False
    command = [str(pg_isready), "-q", "-h", HOST, "-p", str(port), "-U", DB_USER, "-d", "postgres", "-t", "2"]
    return subprocess.run(command, stdin=subprocess.DEVNULL, check=False).returncode == 0


def _create_database(cfg: Config) -> None:
    psql = [str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST,
            "-p", str(cfg.postgres_port), "-U", DB_USER, "-d", "postgres", "-tA", "-c"]
    exists = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"],
                            capture_output=True, text=True, check=False)
    if exists.returncode != 0:
        raise ServiceError("PostgreSQL", f"cannot query the server: {exists.stderr.strip()}",
                           cfg.log_file("postgres"))
    if exists.stdout.strip() != "1":
        _say(f"creating database {DB_NAME}")
        _run([*psql, f'CREATE DATABASE "{DB_NAME}"'], service="PostgreSQL",
             problem=f"creating database {DB_NAME} failed", log_file=cfg.log_file("postgres"))


def _stop_postgres(cfg: Config) -> None:
    service = _service(cfg, "postgres")
    pid = _running_pid(cfg, service)
    if pid is not None:
        _say(f"stopping PostgreSQL (pid {pid})")
        _run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "stop", "-D", str(cfg.postgres_data), "-m", "fast",
                                "-w", "-t", str(int(STOP_TIMEOUT_S))]),
             service="PostgreSQL", problem="pg_ctl stop failed", log_file=cfg.log_file("postgres"),
             cwd=cfg.postgres_dir)
    _remove_stale_pid_file(cfg, service)


# ----------------------------------------------------------------------------------------------------------
# Redis


def _ensure_redis(cfg: Config) -> None:
    service = _service(cfg, "redis")
    log_file = cfg.log_file("redis")
    if _running_pid(cfg, service) is None:
        _remove_stale_pid_file(cfg, service)
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise ServiceError("Redis", "no `redis-server` on PATH (apt-get install redis-server)")
        conf = cfg.redis_dir / "redis.conf"
        settings = {
            "bind": HOST,
            "port": str(cfg.redis_port),
            "dir": str(cfg.redis_dir),
            "daemonize": "yes",
            "pidfile": str(cfg.pid_file("redis")),
            "logfile": str(log_file),
            "save": "",  # a cache and pub/sub for the platform: no snapshots, no append-only file
            "appendonly": "no",
        }
        # JSON string quoting is what redis.conf understands for quoted arguments (escapes, empty strings).
        lines = "".join(f"{key} {json.dumps(value, ensure_ascii=False)}\n" for key, value in settings.items())
        conf.write_text(f"# Generated by infra/services.py on every start; edit it there.\n{lines}")
        _say(f"starting Redis on {HOST}:{cfg.redis_port} (log: {log_file})")
        _run([redis_server, str(conf)], service="Redis", problem="redis-server failed to start",
             log_file=log_file)
    if not _wait_until(lambda: service.probe() and _running_pid(cfg, service) is not None,
                       REDIS_START_TIMEOUT_S):
        raise ServiceError("Redis", f"does not answer PING on {HOST}:{cfg.redis_port}", log_file)


def _redis_answers(port: int, timeout_s: float = 2.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop_redis(cfg: Config) -> None:
    service = _service(cfg, "redis")
    pid = _running_pid(cfg, service)
    if pid is not None:
        _say(f"stopping Redis (pid {pid})")
        if not _terminate(pid, STOP_TIMEOUT_S):
            _say(f"Redis did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM; killed it")
    _remove_stale_pid_file(cfg, service)


# ----------------------------------------------------------------------------------------------------------
# Command line


def _print_table(statuses: Sequence[ServiceStatus]) -> None:
    rows = [("service", "state", "pid", "address", "log file", "data dir")]
    for item in statuses:
        if item.running:
            state = "answering" if item.answers else "running, not answering"
        else:
            state = "stopped (another process answers on its port)" if item.answers else "stopped"
        rows.append((item.name, state, str(item.pid or "-"), item.address, str(item.log_file),
                     str(item.data_dir)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


def _all_ok(statuses: Sequence[ServiceStatus]) -> bool:
    return all(item.running and item.answers for item in statuses)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra", description=__doc__.split("\n\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="install what is missing and start what is not running")
    commands.add_parser("down", help="stop the services started by `up`")
    status_parser = commands.add_parser("status", help="report each service; exit 0 only when all answer")
    status_parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            ensure_up()
        elif args.command == "down":
            ensure_down()
        statuses = status()
    except ServiceError as error:
        print(f"[infra] error: {error}", file=sys.stderr)
        return 1
    if args.command == "status" and args.json:
        report = {item.name: {**dataclasses.asdict(item), "log_file": str(item.log_file),
                              "data_dir": str(item.data_dir)} for item in statuses}
        print(json.dumps({"all_answer": _all_ok(statuses), "services": report}, indent=2))
    else:
        _print_table(statuses)
    if args.command == "down":
        return 0
    return 0 if _all_ok(statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
