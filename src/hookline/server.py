"""Process assembly: open the store, then run the API, the worker and maintenance.

``hookline serve`` runs all three in one event loop; ``--no-worker`` drops the worker and
``hookline worker`` runs the worker alone. SIGTERM or SIGINT stops claiming, lets
in-flight attempts finish (bounded by the request timeout), records them and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import uvicorn
from prometheus_client import start_http_server

import hookline
from hookline.api.app import Services
from hookline.api.connections import ConnectionLimits, protocol_with
from hookline.api.routes import create_app
from hookline.config import TRANSPORT, Settings
from hookline.delivery.auto_disable import run_auto_disable
from hookline.delivery.maintenance import run_maintenance
from hookline.delivery.retention import run_pruning
from hookline.delivery.worker import Worker, WorkerConfig
from hookline.domain.breaker import BreakerSettings
from hookline.domain.ssrf import PortPolicy
from hookline.instrumentation import (
    NO_INSTRUMENTATION,
    Hook,
    Instrumentation,
    LoggingHook,
    MetricsHook,
    Tracing,
    load_tracing,
    prepare_directory,
    tracing_installed,
)
from hookline.operations import endpoints, tokens
from hookline.operations.anomalies import AnomalyDetector
from hookline.operations.audit import WorkerDisables
from hookline.operations.backlog import BacklogMonitor
from hookline.operations.context import Operations
from hookline.operations.failure_groups import FailureGrouper
from hookline.operations.metric_labels import ApplicationLabels
from hookline.operations.operational_webhooks import OperationalPublisher
from hookline.operations.principal import SYSTEM
from hookline.operations.recovery import AutoRecovery
from hookline.operations.tasks import TaskRunner
from hookline.storage.base import Store
from hookline.storage.codec import codec_for
from hookline.storage.postgres import PostgresStore
from hookline.storage.sqlite import SqliteStore
from hookline.transport import AsyncioTransport, SsrfPolicy, Transport

log = logging.getLogger("hookline")

GIL_SWITCH_INTERVAL_SECONDS = 0.0002
"""How soon a thread waiting for the GIL gets it (Python's default is 5 ms). The SQLite
thread needs the GIL back between the statements of a transaction while it holds the
database's write lock, and the loop thread is rarely idle under load: with the default,
every commit could wait milliseconds and every other writer with it. Measured end to end
with two processes: about 10 % more deliveries/s than with the default."""


GC_YOUNG_THRESHOLD = 10_000
"""Net allocations of container objects between two young collections (Python's default is
700). One API request or delivery allocates a few hundred objects that live only until it
ends, so at 700 a young collection ran every few requests, walking whatever the requests in
flight held: about 1,400 of them per 40,000 deliveries, 0.2 ms of CPU each. At 10,000 the
same round has about a dozen (docs/performance-decisions.md, "Garbage collection")."""


@contextlib.contextmanager
def collector_tuned() -> Iterator[None]:
    """Keep the garbage collector's work in proportion to real garbage while the process
    serves, and put Python's settings back at the end (tests run servers in-process).

    Two settings, both measured end to end (docs/performance-decisions.md, "Garbage
    collection"): the heap built at start-up (modules, the app, caches: about 68,000
    objects) is frozen, so the ten or so full collections of a round no longer walk it, 35 ms
    each; and young collections wait for ``GC_YOUNG_THRESHOLD`` net allocations. Reader's
    cost: a reference cycle among the start-up objects that becomes garbage later is freed
    only at exit (plain reference counting still frees everything else, so start-up's own
    garbage is collected once before the freeze), and cyclic garbage made while serving
    waits a little longer to be freed."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def open_store(settings: Settings, instrumentation: Instrumentation = NO_INSTRUMENTATION) -> Store:
    url = settings.database_url
    # Secrets at rest are sealed with the configured keys, or stored as they are without.
    codec = codec_for(settings.encryption_keys)
    if url.startswith("sqlite:"):
        return SqliteStore.from_url(url, codec, instrumentation=instrumentation)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(
            url, pool_size=settings.db_pool_size, codec=codec, instrumentation=instrumentation
        )
    raise SystemExit(
        "unsupported HOOKLINE_DATABASE_URL: use sqlite:///path or postgresql://user@host/db"
    )


async def ensure_admin_token(store: Store, settings: Settings) -> None:
    """Store the configured admin token's hash, or generate one on first start.

    A generated token is printed once to stderr; only its hash is kept, so it cannot
    be shown again (create another with ``hookline token``).
    """
    token = await tokens.ensure_admin_token(Operations(store), SYSTEM, settings.admin_token)
    if token is not None:
        print(
            "\nhookline generated an admin token (shown only this once; keep it safe):\n\n"
            f"    {token}\n",
            file=sys.stderr,
            flush=True,
        )


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        retry_schedule=settings.retry_schedule,
        retry_max_age=settings.retry_max_age,
        request_timeout=settings.request_timeout,
        lease_seconds=settings.lease_seconds,
        poll_interval=settings.poll_interval,
        max_in_flight=settings.max_in_flight,
        endpoint_max_in_flight=settings.endpoint_max_in_flight,
        breaker=BreakerSettings(
            threshold=settings.breaker_threshold,
            failure_ratio=settings.breaker_failure_ratio,
            window_seconds=settings.breaker_window,
            min_attempts=settings.breaker_min_attempts,
            cooldown=settings.breaker_cooldown,
            throttle_seconds=settings.breaker_throttle_seconds,
        ),
        heartbeat_interval=settings.heartbeat_interval,
        stall_timeout=settings.stall_timeout,
        signature_headers=settings.signature_headers,
    )


def instrumentation_for(
    settings: Settings,
    operational: OperationalPublisher | None = None,
    audited: WorkerDisables | None = None,
    metrics: MetricsHook | None = None,
    recovery: AutoRecovery | None = None,
) -> Instrumentation:
    """The consumers of hookline's events: its log lines (every attempt with ``--dev``) and,
    in every process that runs, the operational webhooks (``operational``), the audit
    log's record of the worker's own disables (``audited``), the metrics (``metrics``) and
    the automatic recovery of endpoints that answer again (``recovery``)."""
    hooks: list[Hook] = [LoggingHook(attempts=settings.dev)]
    if operational is not None:
        hooks.append(operational)
    if audited is not None:
        hooks.append(audited)
    if metrics is not None:
        hooks.append(metrics)
    if recovery is not None:
        hooks.append(recovery)
    return Instrumentation(hooks)


@contextlib.contextmanager
def metrics_directory(settings: Settings, given: str | None = None) -> Iterator[str | None]:
    """Where the processes of one ``serve`` or ``worker`` tree keep their metrics: ``given``
    by the parent of ``serve --processes N``; else HOOKLINE_METRICS_DIR, emptied now; else a
    private temporary directory, removed at the end. None when metrics are off."""
    if not settings.metrics:
        yield None
    elif given is not None:
        yield given
    elif settings.metrics_dir is not None:
        try:
            prepare_directory(settings.metrics_dir)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"hookline: HOOKLINE_METRICS_DIR cannot be used: {exc}") from None
        yield settings.metrics_dir
    else:
        directory = tempfile.mkdtemp(prefix="hookline-metrics-")
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def metrics_listener(settings: Settings, metrics: MetricsHook | None) -> Iterator[None]:
    """``hookline worker`` has no API: with HOOKLINE_METRICS_PORT it serves ``/metrics`` on
    that port (prometheus-client's server, on a thread of its own)."""
    if metrics is None or settings.metrics_port is None:
        yield
        return
    server, thread = start_http_server(
        settings.metrics_port, settings.host, registry=metrics.registry()
    )
    log.info("metrics on http://%s:%d/metrics", settings.host, server.server_port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def transport_for(
    settings: Settings, instrumentation: Instrumentation = NO_INSTRUMENTATION
) -> Transport:
    """hookline's one HTTP client, under the SSRF policy the settings describe. A transport
    that was removed is still accepted, so a deployment that names it starts, but it is
    said once, at start, that the setting is ignored."""
    if settings.transport != TRANSPORT:
        log.warning(
            "HOOKLINE_TRANSPORT=%s is ignored and will be removed in a later release: "
            "deliveries use the %s client, hookline's only one",
            settings.transport,
            TRANSPORT,
        )
    policy = SsrfPolicy(
        allow_networks=settings.allow_networks,
        allow_private=settings.dev,
        ports=port_policy(settings),
        https_only=settings.endpoint_https_only,
    )
    return AsyncioTransport(policy, proxy=settings.outbound_proxy, instrumentation=instrumentation)


def port_policy(settings: Settings) -> PortPolicy:
    return PortPolicy(allow=settings.outbound_allow_ports, deny=settings.outbound_deny_ports)


def api_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The API's server-side TLS (``--tls-cert``/``--tls-key``), or None for plain http.

    Built by hookline rather than left to uvicorn's defaults so that TLS 1.2 is the floor,
    and built before anything listens so that an unreadable file or a key that does not
    match the certificate stops the start with a message naming the setting.
    """
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise SystemExit(
            f"hookline: HOOKLINE_TLS_CERT={settings.tls_cert} / HOOKLINE_TLS_KEY="
            f"{settings.tls_key} cannot be used: {exc}"
        ) from None
    mode = os.stat(settings.tls_key).st_mode
    if mode & 0o077:
        log.warning(
            "HOOKLINE_TLS_KEY=%s can be read by other users (mode %o): chmod 600 it",
            settings.tls_key,
            mode & 0o777,
        )
    return context


TLS_CLOSE_GRACE_SECONDS = 1.0
"""At shutdown, how long (one to two of these) a TLS connection hookline has closed, with
everything sent, may wait for the client's close_notify before it is dropped. asyncio
waits 30 s for it, and an idle keep-alive client (an SDK's pool) never answers until it
next uses the connection: every restart would hang."""


def forwarded_options(settings: Settings) -> dict[str, Any]:
    """X-Forwarded-For is read only from the proxies listed in HOOKLINE_TRUSTED_PROXIES
    (the client address feeds the allowlist and the per-address limits), and not parsed
    at all when none is, which every request would otherwise pay for."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    allowed = ",".join(str(network) for network in settings.trusted_proxies)
    return {"proxy_headers": True, "forwarded_allow_ips": allowed}


def uvicorn_logging(settings: Settings) -> dict[str, Any]:
    """uvicorn's own lines (its errors, and its access lines with ``--dev``): its text layout
    by default; with ``--log-format json`` no handlers of its own, so that they reach the
    process's JSON handler (``instrumentation.configure_logging``)."""
    if settings.log_format == "json":
        return {"log_config": None}
    return {}


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process decides how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        reaper = asyncio.create_task(self._drop_closing_tls()) if self.config.is_ssl else None
        try:
            await super().shutdown(sockets)
        finally:
            if reaper is not None:
                reaper.cancel()

    async def _drop_closing_tls(self) -> None:
        """Abort the TLS connections that were already closing at the previous look and
        still are, with nothing left to send: their last response and close_notify are out
        (an abort would drop unsent bytes, so a response still being written is left to
        finish), and only the client's close_notify is awaited."""
        waiting: set[int] = set()
        while True:
            await asyncio.sleep(TLS_CLOSE_GRACE_SECONDS)
            closing: set[int] = set()
            for connection in list(self.server_state.connections):
                transport = cast(asyncio.Transport | None, getattr(connection, "transport", None))
                if transport is None or not transport.is_closing():
                    continue
                if transport.get_write_buffer_size():
                    continue
                if id(connection) in waiting:
                    transport.abort()
                else:
                    closing.add(id(connection))
            waiting = closing


def _counting(
    metrics: MetricsHook, ops: Operations, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    """The metrics' background work: writing the figures for scrapes, and finding the
    applications the operator named for series of their own."""
    tasks = [asyncio.create_task(metrics.run(stop), name="metrics")]
    if metrics.applications:
        labels = ApplicationLabels(metrics).run(ops, stop)
        tasks.append(asyncio.create_task(labels, name="metrics-applications"))
    return tasks


def check_tracing(settings: Settings) -> None:
    """Stop the start, naming the extra to install, when traces are asked for and
    OpenTelemetry is missing."""
    if settings.tracing != "off" and not tracing_installed():
        raise SystemExit(
            f"hookline: HOOKLINE_TRACING={settings.tracing} needs OpenTelemetry, which is not "
            "installed: pip install 'hookline[otel]' (or set HOOKLINE_TRACING=off)"
        )


def tracing_for(settings: Settings) -> Tracing | None:
    """This process's tracer, built after any fork: the SDK's export thread does not
    survive one."""
    check_tracing(settings)
    try:
        return load_tracing(settings.tracing, hookline.__version__)
    except RuntimeError as exc:
        raise SystemExit(f"hookline: {exc}") from None


async def prepare(settings: Settings) -> None:
    """What several processes must not race on: the schema and the first admin token; and
    what should fail once, before any fork: the API's certificate and a missing tracing
    extra."""
    api_tls_context(settings)
    check_tracing(settings)
    store = open_store(settings)
    await store.open()
    try:
        await ensure_admin_token(store, settings)
    finally:
        await store.close()


async def run(
    settings: Settings,
    *,
    api: bool,
    worker: bool,
    listener: socket.socket | None = None,
    metrics_dir: str | None = None,
) -> None:
    """Run until SIGTERM/SIGINT; ``listener`` is a socket already bound by a parent process,
    ``metrics_dir`` the metrics directory it prepared."""
    with metrics_directory(settings, metrics_dir) as directory:
        metrics = (
            None
            if directory is None
            else MetricsHook(directory, hookline.__version__, settings.metrics_applications)
        )
        with metrics_listener(settings, None if api else metrics):
            await _run(settings, api=api, worker=worker, listener=listener, metrics=metrics)


async def _run(
    settings: Settings,
    *,
    api: bool,
    worker: bool,
    listener: socket.socket | None,
    metrics: MetricsHook | None,
) -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    tls = api_tls_context(settings) if api else None
    publisher = OperationalPublisher()
    audited = WorkerDisables()
    recovery = AutoRecovery()
    instrumentation = instrumentation_for(settings, publisher, audited, metrics, recovery)
    store = open_store(settings, instrumentation)
    await store.open()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    transport = transport_for(settings, instrumentation)
    tracing = tracing_for(settings)
    delivery = (
        Worker(
            store,
            transport,
            worker_config(settings),
            instrumentation=instrumentation,
            tracing=tracing,
        )
        if worker
        else None
    )
    if delivery is not None:
        store.attach_handoff(delivery)
    tasks: list[asyncio.Task[None]] = []
    delivering: list[asyncio.Task[None]] = []
    server: _Server | None = None
    disable_after = timedelta(seconds=settings.auto_disable_after)
    ops = Operations(
        store,
        base_url=settings.base_url,
        instrumentation=instrumentation,
        disable_after=disable_after,
        endpoint_https_only=settings.endpoint_https_only,
        ports=port_policy(settings),
        max_endpoints_per_app=settings.max_endpoints_per_app,
        stall_timeout=timedelta(seconds=settings.stall_timeout),
        backlog=BacklogMonitor(settings.backlog_sample_interval),
        tracing=tracing,
    )
    runner: TaskRunner | None = None
    if delivery is not None:
        runner = TaskRunner(ops)
        ops.work_queued = delivery.wake
        ops.endpoint_changed = delivery.endpoint_changed
        ops.work_due = delivery.wake_at
        ops.task_queued = runner.wake
    try:
        tasks.append(asyncio.create_task(publisher.run(ops, stop), name="operational-webhooks"))
        backlog = ops.backlog.run(ops, stop)
        tasks.append(asyncio.create_task(backlog, name="backlog-monitor"))
        tasks.append(asyncio.create_task(audited.run(ops, stop), name="audit-worker-disables"))
        tasks.append(asyncio.create_task(recovery.run(ops, stop), name="auto-recovery"))
        if metrics is not None:
            tasks += _counting(metrics, ops, stop)
        if api:
            await ensure_admin_token(store, settings)
            services = Services(ops=ops, settings=settings, metrics=metrics, stopping=stop)
            config = uvicorn.Config(
                create_app(services, instrumentation),
                host=settings.host,
                port=settings.port,
                http=protocol_with(ConnectionLimits.from_settings(settings)),
                lifespan="off",
                # Responses do not advertise the server underneath.
                server_header=False,
                **forwarded_options(settings),
                access_log=settings.dev,
                log_level="info" if settings.dev else "warning",
                **uvicorn_logging(settings),
                ssl_context_factory=None if tls is None else (lambda _config, _default: tls),
            )
            server = _Server(config)
            sockets = None if listener is None else [listener]
            tasks.append(asyncio.create_task(server.serve(sockets), name="hookline-api"))
        if delivery is not None:
            delivering.append(asyncio.create_task(delivery.run(), name="hookline-worker"))
            delivering.append(asyncio.create_task(run_maintenance(store, stop), name="maintenance"))
            tasks += delivering
            auto_disable = run_auto_disable(
                store,
                stop,
                disable_after,
                lambda failure: endpoints.disable_failing(ops, failure),
                instrumentation,
            )
            tasks.append(asyncio.create_task(auto_disable, name="auto-disable"))
            if settings.anomaly_detection:
                detector = AnomalyDetector(settings.anomaly_interval).run(ops, stop)
                tasks.append(asyncio.create_task(detector, name="anomaly-detection"))
            grouper = FailureGrouper().run(ops, stop)
            tasks.append(asyncio.create_task(grouper, name="failure-groups"))
        if runner is not None:
            delivering.append(asyncio.create_task(runner.run(stop), name="background-tasks"))
            tasks.append(delivering[-1])
            if settings.retention is not None:
                pruning = run_pruning(store, settings.retention, settings.prune_interval, stop)
                tasks.append(asyncio.create_task(pruning, name="retention"))
        log.info(
            "hookline running (api=%s, worker=%s, database=%s)",
            api,
            worker,
            settings.database_url.split("@")[-1],
        )
        with collector_tuned():
            await _until_stopped(stop, tasks)
    finally:
        stop.set()
        if delivery is not None:
            # Keep accepting publishes (committed, left pending for the next worker) while
            # the worker finishes the attempts it holds, however long a hanging endpoint
            # makes that; the listener closes only then, so a restart's publish gap is the
            # restart alone (docs/deployment.md, "Restarts").
            delivery.stop()
            await asyncio.gather(*delivering, return_exceptions=True)
        if server is not None:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        await transport.close()
        await store.close()
        if tracing is not None:
            # Exports what the batch processor still holds; a blocking call, at the very end.
            tracing.shutdown()


async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for a stop signal; a component that ends before it is a fault and is raised."""
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if waiter in done:
        # Components that watch the stop signal themselves may end in the same step.
        return
    for task in done:
        error = task.exception()
        if error is not None:
            raise error
        raise RuntimeError(f"{task.get_name()} stopped unexpectedly")
