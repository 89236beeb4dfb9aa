"""Types shared by every topic schema.

Money is a Decimal everywhere; in JSON it is a string ("123.45"), never a float. Parsing accepts a
string or an integer; a JSON float is rejected so that no binary rounding can slip in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema


def _money_from_input(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("money must be a decimal string, not a float")
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_money_from_input),
    PlainSerializer(lambda value: str(value), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal amount (USD)"}),
]

Quantity = Annotated[
    Decimal,
    BeforeValidator(_money_from_input),
    PlainSerializer(lambda value: str(value), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal quantity"}),
]


class Model(BaseModel):
    """Base of every topic model: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")
