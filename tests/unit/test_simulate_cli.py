"""``claimwatch simulate``: options, the folder it writes, and the live stream (fake producer, fake clock)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from schemas.claims import ClaimContext
from schemas.remittance import ProviderAdjustmentEvent, RemittanceEvent
from services import cli
from services.settings import DEMO_HMAC_KEY, get_settings
from services.simulate.generate import Simulation
from services.simulate.live import stream

KEY = DEMO_HMAC_KEY.encode()


def run(monkeypatch, *argv: str) -> int:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("services.simulate.cli",))
    return cli.main(["simulate", *argv])


def test_simulate_is_a_registered_subcommand():
    assert "services.simulate.cli" in cli.COMMAND_MODULES


def test_writes_and_checks_a_folder(monkeypatch, tmp_path, capsys):
    assert run(monkeypatch, "--out", str(tmp_path / "demo"), "--claims", "300", "--seed", "3") == 0
    out = capsys.readouterr().out
    assert "300 claims" in out
    assert "check: reference folder valid" in out
    assert "0 dead letters, 0 balance issues" in out or "parser not available" in out
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["counts"]["claims"] == 300
    assert len((tmp_path / "demo" / "claims.jsonl").read_text().splitlines()) == 300


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "--out DIR"),
        (("--rate", "5"), "--rate and --duration"),
        (("--out", "X", "--claims", "50"), "at least 200"),
        (("--rate", "5", "--duration", "2", "--claims", "400"), "drop --claims"),
        (("--out", "X", "--weeks", "20"), "between 4 and 12"),
    ],
)
def test_bad_options(monkeypatch, capsys, argv, message):
    assert run(monkeypatch, *argv) == 2
    assert message in capsys.readouterr().err


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeSink:
    def __init__(self, clock: FakeClock | None = None):
        self.clock = clock
        self.messages: list[tuple[str, object, float]] = []
        self.flushed = 0

    def claim_context(self, context: ClaimContext) -> None:
        self.messages.append(("claims", context, self.clock() if self.clock else 0.0))

    def remittance(self, event) -> None:
        self.messages.append(("remittances", event, self.clock() if self.clock else 0.0))

    def dead_letter(self, letter) -> None:
        self.messages.append(("dead-letters", letter, 0.0))

    def flush(self) -> None:
        self.flushed += 1


def test_stream_paces_claims_and_sends_each_context_before_its_remittances():
    clock = FakeClock()
    sink = FakeSink(clock)
    lines: list[str] = []
    stats = stream(
        Simulation(seed=5, claims=240),
        sink,
        rate=20.0,
        hmac_key=KEY,
        clock=clock,
        sleep=clock.sleep,
        progress=lines.append,
        context_lead_s=1.0,
    )
    assert stats.claims == stats.contexts == 240
    assert stats.dead_letters == 0 and stats.balance_issues == 0 and not stats.stopped_early
    assert sink.flushed == 1
    assert stats.elapsed_s == pytest.approx(239 / 20.0)
    assert len(lines) >= 11  # about one progress line per (fake) second, and a final one
    first_remittance: dict[str, float] = {}
    context_at: dict[str, int] = {}
    claim_order: list[str] = []
    for position, (topic, message, at) in enumerate(sink.messages):
        if topic == "claims":
            context_at[message.partition_key] = position
        elif isinstance(message, RemittanceEvent) and message.partition_key not in first_remittance:
            first_remittance[message.partition_key] = at
            claim_order.append(message.partition_key)
            assert context_at[message.partition_key] < position  # the context went out first
    for index, key in enumerate(claim_order):
        assert first_remittance[key] == pytest.approx(100.0 + index / 20.0)  # no drift: start + i / rate
    # the context lead: 20 claims per second x 1 second ahead (after the first ones)
    later = [sink.messages[context_at[key]][2] for key in claim_order[40:60]]
    assert all(
        first_remittance[key] - at == pytest.approx(1.0) for key, at in zip(claim_order[40:60], later, strict=True)
    )


def test_stream_publishes_what_the_parser_reads_from_the_files(tmp_path):
    from services.ingestion.x12 import parse_path
    from services.simulate.generate import write_simulation

    write_simulation(tmp_path, seed=4, claims=250)
    expected = [
        item.event_id for path in sorted((tmp_path / "remittances").glob("*.835")) for item in parse_path(path, KEY)
    ]
    sink = FakeSink()
    stats = stream(Simulation(seed=4, claims=250), sink, rate=1e9, hmac_key=KEY, progress=None)
    sent = [message.event_id for topic, message, _ in sink.messages if topic == "remittances"]
    assert sorted(sent) == sorted(expected)
    contexts = [message for topic, message, _ in sink.messages if topic == "claims"]
    assert len(contexts) == stats.claims == 250
    file_contexts = (tmp_path / "claims.jsonl").read_text().splitlines()
    assert sorted(context.model_dump_json(exclude_none=True) for context in contexts) == sorted(file_contexts)
    kinds = Counter(type(message).__name__ for topic, message, _ in sink.messages if topic == "remittances")
    assert kinds[ProviderAdjustmentEvent.__name__] == stats.provider_adjustments > 0


def test_stream_stops_after_max_claims():
    sink = FakeSink()
    stats = stream(Simulation(seed=6, claims=200), sink, rate=1e9, hmac_key=KEY, max_claims=50, progress=None)
    assert stats.claims == 50 and stats.stopped_early
    assert sum(1 for topic, _, _ in sink.messages if topic == "claims") == 50


def test_live_mode_command_with_a_fake_producer(monkeypatch, capsys):
    import services.ingestion.publish as publish
    import services.kafka_admin as kafka_admin

    sinks: list[FakeSink] = []

    class FakePublisher(FakeSink):
        def __init__(self, settings):
            super().__init__()
            self.sent: Counter[str] = Counter()
            sinks.append(self)

        def claim_context(self, context):
            self.sent["claims"] += 1
            super().claim_context(context)

        def remittance(self, event):
            self.sent["remittances"] += 1
            super().remittance(event)

        def close(self):
            self.flush()

    monkeypatch.setattr(publish, "Publisher", FakePublisher)
    monkeypatch.setattr(kafka_admin, "create_topics", lambda settings, specs: ([], []))
    assert run(monkeypatch, "--rate", "2000", "--duration", "0.125", "--seed", "2") == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["claims"] == summary["requested_claims"] == 250
    assert summary["dead_letters"] == 0
    assert summary["topics"][get_settings().topic("claims")] == 250
    assert "reference load" in captured.err  # reminds that the reference must be loaded
    assert sinks and sinks[0].flushed >= 1
