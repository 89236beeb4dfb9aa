"""Every runtime setting of claimwatch, in one place.

Each field is read from an environment variable named ``CLAIMWATCH_<FIELD>`` (upper case). README.md
documents every one of them; ``tests/unit/test_settings.py`` checks that it does.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_HMAC_KEY = "claimwatch-demo-key-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLAIMWATCH_", extra="ignore")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated host:port list."
    )
    topic_prefix: str = Field(
        "claimwatch.", description="Prefix of every topic name (lets several environments share a cluster)."
    )
    partitions: int = Field(4, ge=1, description="Partitions for new (non-reference) topics.")
    replication_factor: int = Field(1, ge=1, description="Replication factor for new topics.")
    app_id: str = Field("claimwatch", description="Faust application id = Kafka consumer group id.")
    web_host: str = Field("127.0.0.1", description="Address the worker's web server binds to.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the worker's /health and /metrics.")
    hmac_key: SecretStr = Field(
        SecretStr(DEMO_HMAC_KEY),
        description="Key of the HMAC-SHA256 that replaces member ids (patient_key) and keys event ids; set your own.",
    )
    state_dir: Path = Field(
        Path(".state"), description="Directory for worker state (RocksDB tables, offsets of file ingestion)."
    )
    store: str = Field("rocksdb://", description="Faust table store URL: rocksdb:// (durable, default) or memory://.")
    reference_dir: Path | None = Field(
        None, description="Reference folder used by the worker when no reference was loaded into Kafka."
    )
    broker_timeout_s: float = Field(
        15.0, gt=0, description="Seconds to wait for the broker before a command gives up with an error."
    )
    log_level: str = Field("info", description="Log level of the worker and CLI (debug, info, warning, error).")
    security_protocol: str = Field(
        "PLAINTEXT", description="Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: str | None = Field(
        None, description="SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); PLAIN when a SASL protocol is set."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password.")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certificates (SSL).")
    ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS (SSL).")
    ssl_keyfile: Path | None = Field(None, description="Private key of the client certificate (SSL).")
    api_token: SecretStr | None = Field(
        None,
        description="When set, worker endpoints other than /health and /metrics need 'Authorization: Bearer <token>'.",
    )

    nsa_reminder_offsets: str = Field(
        "10,5,1", description="Business days before each NSA deadline at which a reminder is sent (comma list)."
    )
    nsa_tick_interval_s: float = Field(
        60.0, ge=0, description="Seconds between NSA clock ticks (reminder checks); 0 disables the timer."
    )
    table_write_buffer_mb: int = Field(
        2, ge=1, description="RocksDB memtable size per table partition, MiB (two per partition at most)."
    )
    table_block_cache_mb: int = Field(4, ge=1, description="RocksDB read cache per table partition, MiB.")
    batch_max_events: int = Field(
        500, ge=1, description="Most events an agent processes as one batch (one broker round trip for their outputs)."
    )
    batch_within_s: float = Field(
        0.02, gt=0, description="Seconds an agent waits for a batch to fill before processing what it has."
    )
    recurrence_threshold: int = Field(
        3, ge=1, description="OON claims for one payer + specialty + county within 90 days that open an SCA lead."
    )

    @field_validator("sasl_mechanism")
    @classmethod
    def _mechanism(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        mechanism = value.strip().upper()
        if mechanism not in SASL_MECHANISMS:
            raise ValueError(f"expected one of {', '.join(sorted(SASL_MECHANISMS))}, got {value!r}")
        return mechanism

    @property
    def effective_sasl_mechanism(self) -> str | None:
        """The SASL mechanism both Kafka clients use: the configured one, PLAIN when a SASL protocol has none."""
        if not self.security_protocol.upper().startswith("SASL"):
            return None
        return self.sasl_mechanism or "PLAIN"

    @field_validator("nsa_reminder_offsets")
    @classmethod
    def _offsets(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not parts or not all(part.isdigit() for part in parts):
            raise ValueError("expected comma-separated whole numbers of business days, e.g. 10,5,1")
        return ",".join(parts)

    def reminder_offsets(self) -> tuple[int, ...]:
        return tuple(sorted({int(part) for part in self.nsa_reminder_offsets.split(",")}, reverse=True))

    @field_validator("security_protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        allowed = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
        if value.upper() not in allowed:
            raise ValueError(f"must be one of {sorted(allowed)}")
        return value.upper()

    def topic(self, name: str) -> str:
        """Full topic name for a logical topic name declared in services.topics."""
        return f"{self.topic_prefix}{name}"

    def kafka_python_security(self) -> dict[str, object]:
        """Keyword arguments for kafka-python clients (producer, consumer, admin)."""
        options: dict[str, object] = {"security_protocol": self.security_protocol}
        if self.effective_sasl_mechanism:
            options["sasl_mechanism"] = self.effective_sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        if self.ssl_cafile:
            options["ssl_cafile"] = str(self.ssl_cafile)
        if self.ssl_certfile:
            options["ssl_certfile"] = str(self.ssl_certfile)
        if self.ssl_keyfile:
            options["ssl_keyfile"] = str(self.ssl_keyfile)
        return options


SASL_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
