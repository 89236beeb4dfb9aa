"""The Faust application: one app per worker process, its topics, the web endpoints and pipeline metrics.

Agents live beside the pure core they wire (``services/<area>/agent.py``) and register themselves on
``app`` when imported; ``load_agents`` imports them. Everything here is configuration and plumbing.
"""

from __future__ import annotations

import logging

import faust
from aiohttp import web as aiohttp_web
from mode.utils.queues import FlowControlEvent
from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector, generate_latest

from services import metrics
from services.consumer import ContiguousCommitConsumer
from services.settings import Settings, get_settings
from services.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)

AGENT_MODULES: tuple[str, ...] = (
    "services.claims.agent",
    "services.remittances.agent",
    "services.nsa.agent",
    "services.adequacy.agent",
)
PUBLIC_PATHS = frozenset({"/health", "/metrics"})


def _credentials(settings: Settings) -> object | None:
    if settings.security_protocol == "PLAINTEXT":
        return None
    import ssl

    context = None
    if settings.security_protocol in {"SSL", "SASL_SSL"}:
        context = ssl.create_default_context(cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
        if settings.ssl_certfile:
            context.load_cert_chain(
                str(settings.ssl_certfile), str(settings.ssl_keyfile) if settings.ssl_keyfile else None
            )
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
            mechanism=settings.effective_sasl_mechanism,
            ssl_context=context,
        )
    return context


class ResumeClearsOnlyAfterSuspend(FlowControlEvent):
    """Faust's flow control, except that ``resume`` empties the stream queues only when flow was suspended.

    Faust clears every stream queue on ``resume`` so that messages fetched before a rebalance are dropped
    (they are fetched again from the committed offsets). After a (re)start, its recovery resumes the flow
    once to read the changelogs and again after seeking the stream partitions to their committed offsets
    (faust/tables/recovery.py ``_resume_streams``: resume_partitions, perform_seek, then resume). Messages the
    fetcher reads between the seek and that second resume are cleared from the queue while the consumer's
    read offset already points past them, so they are never fetched again: the partition stalls, its
    committed offset stuck, until the next rebalance (seen as a worker that processes nothing for minutes
    after a restart, tests/integration/test_underpayment_live.py). Keeping the queue when nothing was
    suspended can instead deliver a message twice (fetched before and after the seek): at-least-once, and
    the handlers recognise a repeated event (claim state, case and opportunity tables).
    """

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


def build_app(settings: Settings) -> faust.App:
    broker = ";".join(f"kafka://{address.strip()}" for address in settings.bootstrap_servers.split(","))
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    application = faust.App(
        settings.app_id,
        broker=broker,
        broker_credentials=_credentials(settings),
        store=settings.store,
        datadir=str(settings.state_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        key_serializer="raw",
        value_serializer="raw",
        processing_guarantee="at_least_once",
        broker_commit_interval=0.5,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=30.0,
        producer_acks=-1,
        producer_linger_ms=5,  # a batch's outputs and changelog writes share produce requests
        topic_disable_leader=True,
    )
    application.flow_control = ResumeClearsOnlyAfterSuspend()  # before any stream queue registers with it
    application.transport.Consumer = ContiguousCommitConsumer  # see services/consumer.py
    return application


def table_options(settings: Settings) -> dict[str, int]:
    """RocksDB options of every table (one RocksDB per table partition).

    Faust's defaults are 64 MiB memtables, up to 3 of them, and a 2 GiB block cache per database; with seven
    tables of four partitions a worker's memory grew by ~11 KiB per claim for as long as it ran (a 10-minute
    soak at 100 claims/s went from 261 to 949 MiB; with 4 MiB buffers and an 8 MiB cache, 260 to 450 MiB in 5
    minutes, half the slope). Bounded here: at most 2 x write buffer + block cache + 1 MiB per table partition."""
    return {
        "write_buffer_size": settings.table_write_buffer_mb << 20,
        "max_write_buffer_number": 2,
        "block_cache_size": settings.table_block_cache_mb << 20,
        "block_cache_compressed_size": 1 << 20,
    }


settings = get_settings()
app = build_app(settings)
ProcessCollector(registry=metrics.REGISTRY)


def bytes_table(name: str) -> faust.Table:
    """A table with bytes keys and values (the handlers encode JSON themselves), partitioned like the topic
    its agent reads, with the bounded RocksDB options of ``table_options``."""
    return app.Table(name, key_type=bytes, value_type=bytes, partitions=None, options=table_options(settings))


def topic(spec: TopicSpec) -> faust.TopicT:
    """The Faust topic for a declared topic (raw bytes in and out; schemas are applied by the agents)."""
    return app.topic(
        spec.full_name(settings),
        key_type=bytes,
        value_type=bytes,
        partitions=spec.partition_count(settings),
        internal=False,
    )


TOPICS: dict[str, faust.TopicT] = {spec.name: topic(spec) for spec in ALL_TOPICS}


@app.page("/health")
async def health(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
    from services.reference.live import reference_state

    return view.json(
        {
            "status": "ok",
            "app_id": settings.app_id,
            "agents": sorted(agent.name for agent in app.agents.values()),
            "reference": reference_state(),
        }
    )


@app.page("/metrics")
async def metrics_page(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
    return view.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@aiohttp_web.middleware
async def _bearer_token(request: aiohttp_web.Request, handler):  # type: ignore[no-untyped-def]
    token = settings.api_token.get_secret_value() if settings.api_token else None
    if token and request.path not in PUBLIC_PATHS:
        if request.headers.get("Authorization", "") != f"Bearer {token}":
            return aiohttp_web.json_response({"error": "bearer token required"}, status=401)
    return await handler(request)


def _install_auth(web: object) -> None:
    web_app = getattr(web, "web_app", None)
    if web_app is not None and _bearer_token not in web_app.middlewares:
        web_app.middlewares.append(_bearer_token)


_original_webserver_init = app.on_webserver_init


def _on_webserver_init(web: object) -> None:
    _original_webserver_init(web)
    _install_auth(web)


app.on_webserver_init = _on_webserver_init  # type: ignore[method-assign]


@app.task
async def mark_worker_up() -> None:
    metrics.worker_up.set(1)


@app.timer(interval=5.0)
async def measure_consumer_lag() -> None:
    """Publish consumer lag per topic: highwater minus the last offset read, summed over partitions."""
    consumer = app.consumer
    lag_by_topic: dict[str, int] = {}
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        read = consumer._read_offset.get(tp)
        if highwater is None:
            continue
        position = (read + 1) if read is not None else 0
        lag_by_topic[tp.topic] = lag_by_topic.get(tp.topic, 0) + max(highwater - position, 0)
    for name, lag in lag_by_topic.items():
        metrics.consumer_lag.labels(topic=metrics.topic_label(name)).set(lag)


def load_agents() -> None:
    import importlib

    from services.reference import live  # noqa: F401  (registers the reference reader task)

    for module_name in AGENT_MODULES:
        importlib.import_module(module_name)


