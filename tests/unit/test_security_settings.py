"""Kafka SASL/SSL settings reach both Kafka clients (docs/security.md).

The worker's Faust app gets ``services.app._credentials(settings)`` as ``broker_credentials``; Faust turns it
into aiokafka keyword arguments with ``credentials_to_aiokafka_auth`` (the function its consumer and producer
call). The CLI tools and the worker's reference reader use kafka-python with
``Settings.kafka_python_security()`` (``services.kafka_admin`` producer, admin client and ``tail``; the
``reference load`` consumer). Certificates are made with the openssl command line for each test run; the TLS
contexts are checked by a real handshake with a local server that requires a client certificate.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import to_credentials
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from services.settings import Settings

SECURITY_FIELDS = (
    "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password", "ssl_cafile", "ssl_certfile",
    "ssl_keyfile",
)  # fmt: skip


class _Stop(Exception):
    """Raised by the fake Kafka clients once they recorded their arguments."""


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A CA, a server certificate for localhost and a client certificate, all signed by the CA."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    folder = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=claimwatch-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    for name, extension in (("server", "subjectAltName=DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN=claimwatch-test-{name}")  # fmt: skip
        (folder / f"{name}.ext").write_text(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")  # fmt: skip
    return {name: folder / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def security(**values: object) -> Settings:
    """Settings with exactly these security values (the others unset, whatever the environment says)."""
    unset: dict[str, object] = {name: None for name in SECURITY_FIELDS}
    unset["security_protocol"] = "PLAINTEXT"
    return Settings(**{**unset, **values})


def sasl_ssl_scram(pki: dict[str, Path]) -> Settings:
    return security(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="claimwatch",
                    sasl_password="s3cret-pw", ssl_cafile=pki["ca.pem"])  # fmt: skip


def mutual_tls(pki: dict[str, Path]) -> Settings:
    return security(security_protocol="SSL", ssl_cafile=pki["ca.pem"], ssl_certfile=pki["client.pem"],
                    ssl_keyfile=pki["client.key"])  # fmt: skip


def faust_auth(settings: Settings) -> dict:
    """What Faust gives aiokafka for these settings: the app's credentials, converted as Faust does."""
    from services.app import _credentials

    return dict(credentials_to_aiokafka_auth(to_credentials(_credentials(settings))))


def handshake(client: ssl.SSLContext, pki: dict[str, Path], *, mutual: bool) -> str | None:
    """TLS handshake of ``client`` with a local server for "localhost" whose certificate the CA signed, and
    that requires (``mutual``) or accepts a client certificate signed by the CA; returns the common name of
    the certificate the client presented (None when it presented none)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki["server.pem"], pki["server.key"])
    server.load_verify_locations(pki["ca.pem"])
    server.verify_mode = ssl.CERT_REQUIRED if mutual else ssl.CERT_OPTIONAL
    seen: dict[str, object] = {}
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve() -> None:
            connection, _ = listener.accept()
            try:
                with server.wrap_socket(connection, server_side=True) as tls:
                    subject = dict(item[0] for item in (tls.getpeercert() or {}).get("subject", ()))
                    seen["client"] = subject.get("commonName")
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as error:
                seen["error"] = error
                connection.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.recv(2)
        thread.join(10)
    if "error" in seen:
        raise AssertionError(f"the server refused the client: {seen['error']}")
    return seen.get("client")  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# The environment variables documented in docs/security.md are the settings' names


def test_security_environment_variables(monkeypatch, pki):
    for name, value in {
        "CLAIMWATCH_SECURITY_PROTOCOL": "sasl_ssl",
        "CLAIMWATCH_SASL_MECHANISM": "SCRAM-SHA-256",
        "CLAIMWATCH_SASL_USERNAME": "claimwatch",
        "CLAIMWATCH_SASL_PASSWORD": "from-env",
        "CLAIMWATCH_SSL_CAFILE": str(pki["ca.pem"]),
        "CLAIMWATCH_SSL_CERTFILE": str(pki["client.pem"]),
        "CLAIMWATCH_SSL_KEYFILE": str(pki["client.key"]),
        "CLAIMWATCH_API_TOKEN": "token-from-env",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.security_protocol == "SASL_SSL"  # upper-cased
    assert (settings.sasl_mechanism, settings.sasl_username) == ("SCRAM-SHA-256", "claimwatch")
    assert settings.sasl_password.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)  # a SecretStr: never printed
    assert (settings.ssl_cafile, settings.ssl_certfile, settings.ssl_keyfile) == (
        pki["ca.pem"], pki["client.pem"], pki["client.key"],
    )  # fmt: skip
    assert settings.api_token.get_secret_value() == "token-from-env"


# --------------------------------------------------------------------------------------------------
# kafka-python (CLI tools, the worker's reference reader and topic creation)


def test_kafka_python_sasl_ssl_scram(pki):
    assert sasl_ssl_scram(pki).kafka_python_security() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "claimwatch",
        "sasl_plain_password": "s3cret-pw",
        "ssl_cafile": str(pki["ca.pem"]),
    }


def test_kafka_python_mutual_tls(pki):
    assert mutual_tls(pki).kafka_python_security() == {
        "security_protocol": "SSL",
        "ssl_cafile": str(pki["ca.pem"]),
        "ssl_certfile": str(pki["client.pem"]),
        "ssl_keyfile": str(pki["client.key"]),
    }


def test_kafka_python_plaintext_passes_nothing_else():
    assert security().kafka_python_security() == {"security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("client", [KafkaProducer, KafkaConsumer, KafkaAdminClient])
def test_kafka_python_options_are_options_of_every_client(client, pki):
    for settings in (sasl_ssl_scram(pki), mutual_tls(pki)):
        unknown = set(settings.kafka_python_security()) - set(client.DEFAULT_CONFIG)
        assert not unknown, f"{client.__name__} has no option {unknown}"


def test_cli_clients_are_built_with_the_security_options(monkeypatch, pki):
    """The producer, the admin client and the consumers of the CLI get the options (fake clients record them)."""
    import kafka
    import kafka.admin

    from services import app_cli, kafka_admin

    settings = sasl_ssl_scram(pki)
    expected = settings.kafka_python_security()
    calls: dict[str, dict] = {}

    def fake(name: str):
        def build(*args: object, **kwargs: object):
            calls[name] = kwargs
            raise _Stop

        return build

    monkeypatch.setattr(kafka_admin, "first_reachable", lambda settings: None)
    monkeypatch.setattr(kafka_admin, "get_settings", lambda: settings)
    monkeypatch.setattr(app_cli, "get_settings", lambda: settings)
    monkeypatch.setattr(kafka, "KafkaProducer", fake("producer"))
    monkeypatch.setattr(kafka, "KafkaConsumer", fake("consumer"))
    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", fake("admin"))
    with pytest.raises(_Stop):
        kafka_admin.producer(settings)
    with pytest.raises(_Stop):
        kafka_admin.admin_client(settings)
    with pytest.raises(_Stop):
        kafka_admin._tail(type("Args", (), {"topic": "dead-letters", "follow": False, "limit": 1})())
    calls["tail consumer"] = calls.pop("consumer")
    with pytest.raises(_Stop):
        app_cli._existing_reference_keys(["t"])
    calls["reference load consumer"] = calls.pop("consumer")
    assert set(calls) == {"producer", "admin", "tail consumer", "reference load consumer"}
    for name, kwargs in calls.items():
        assert {key: kwargs.get(key) for key in expected} == expected, name


# --------------------------------------------------------------------------------------------------
# Faust (the worker's consumer and producer, through aiokafka)


def test_faust_sasl_ssl_scram(pki):
    auth = faust_auth(sasl_ssl_scram(pki))
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("claimwatch", "s3cret-pw")
    context = auth["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [dict(item[0] for item in ca["subject"])["commonName"] for ca in context.get_ca_certs()] == [
        "claimwatch-test-ca"
    ]
    assert handshake(context, pki, mutual=False) is None  # the CA verifies the server; no client certificate


def test_faust_mutual_tls(pki):
    auth = faust_auth(mutual_tls(pki))
    assert auth["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in auth
    assert handshake(auth["ssl_context"], pki, mutual=True) == "claimwatch-test-client"  # cafile, cert and key


def test_the_handshake_check_fails_without_the_ca_or_the_client_certificate(pki):
    no_ca = faust_auth(security(security_protocol="SSL"))["ssl_context"]  # the system's CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(no_ca, pki, mutual=False)
    no_client = faust_auth(security(security_protocol="SSL", ssl_cafile=pki["ca.pem"]))["ssl_context"]
    with pytest.raises((ssl.SSLError, AssertionError, ConnectionError)):
        handshake(no_client, pki, mutual=True)


def test_faust_sasl_plaintext_has_no_tls(pki):
    auth = faust_auth(security(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u",
                               sasl_password="p", ssl_cafile=pki["ca.pem"]))  # fmt: skip
    assert (auth["security_protocol"], auth["sasl_mechanism"], auth["ssl_context"]) == ("SASL_PLAINTEXT", "PLAIN", None)
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("u", "p")


def test_faust_plaintext():
    assert faust_auth(security()) == {"security_protocol": "PLAINTEXT"}


def test_the_worker_app_carries_the_credentials(tmp_path, pki):
    """``build_app`` hands the credentials to the Faust app; its consumer and producer convert them like this."""
    from services.app import build_app

    settings = sasl_ssl_scram(pki).model_copy(update={"state_dir": tmp_path / "state", "app_id": "cw-unit-auth"})
    application = build_app(settings)
    credentials = application.conf.broker_credentials
    assert isinstance(credentials, SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials, application.conf.ssl_context)
    assert (auth["security_protocol"], auth["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("claimwatch", "s3cret-pw")
    assert handshake(auth["ssl_context"], pki, mutual=False) is None

    tls = build_app(mutual_tls(pki).model_copy(update={"state_dir": tmp_path / "state2", "app_id": "cw-unit-tls"}))
    assert isinstance(tls.conf.broker_credentials, SSLCredentials)
    assert handshake(tls.conf.broker_credentials.context, pki, mutual=True) == "claimwatch-test-client"


# --------------------------------------------------------------------------------------------------
# Both clients agree


@pytest.mark.parametrize("build", [sasl_ssl_scram, mutual_tls])
def test_both_clients_get_the_same_protocol_and_identity(build, pki):
    settings = build(pki)
    faust_side, python_side = faust_auth(settings), settings.kafka_python_security()
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert faust_side.get(key) == python_side.get(key), key


def test_sasl_without_a_mechanism_is_the_same_for_both_clients(pki):
    settings = security(security_protocol="SASL_SSL", sasl_username="claimwatch", sasl_password="s3cret-pw",
                        ssl_cafile=pki["ca.pem"])  # fmt: skip
    faust_side, python_side = faust_auth(settings), settings.kafka_python_security()
    assert faust_side["sasl_mechanism"] == "PLAIN"
    assert python_side.get("sasl_mechanism") == "PLAIN"
    assert python_side.get("sasl_plain_username") == "claimwatch"
