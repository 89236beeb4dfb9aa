"""Export the JSON Schema of every topic model into schemas/json/ (run: python -m schemas.export).

tests/unit/test_schemas.py checks that the committed files equal what the models generate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

JSON_DIR = Path(__file__).resolve().parent / "json"


def topic_models() -> dict[str, type]:
    from services.topics import ALL_TOPICS

    models: dict[str, type] = {}
    for spec in ALL_TOPICS:
        for model in spec.value_models():
            models[model.__name__] = model
    return models


def render(model: type) -> str:
    schema = model.model_json_schema(mode="serialization")  # type: ignore[attr-defined]
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[str, str]:
    return {f"{name}.schema.json": render(model) for name, model in sorted(topic_models().items())}


def main() -> int:
    JSON_DIR.mkdir(exist_ok=True)
    wanted = expected_files()
    for stale in JSON_DIR.glob("*.schema.json"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (JSON_DIR / name).write_text(text)
        print(f"wrote schemas/json/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
