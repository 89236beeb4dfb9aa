"""The payer OON benchmark expression: a tiny grammar parsed into an AST (never ``eval``).

Grammar (case-insensitive, spaces ignored)::

    expression := function | term
    function   := ("max" | "min") "(" expression ("," expression)+ ")"
    term       := [number "%"] source            (no percent means 100%)
    source     := "medicare" | "billed" | "ucr" percentile
    percentile := 50 | 60 | 70 | 75 | 80 | 85 | 90 | 95   written ucr80, ucr p80, ucr_p80

Examples: ``140% medicare``, ``85% billed``, ``max(150% medicare, 100% ucr80)``,
``min(max(125% medicare, ucr70), 100% billed)``. At most 8 levels of nesting and 8 arguments per
function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

UCR_PERCENTILES = (50, 60, 70, 75, 80, 85, 90, 95)
MAX_DEPTH = 8
MAX_ARGUMENTS = 8

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<symbol>[%(),]))")
_UCR = re.compile(r"ucr_?p?(\d+)")


class BenchmarkSyntaxError(ValueError):
    def __init__(self, message: str, position: int):
        super().__init__(f"{message} at character {position + 1}")
        self.position = position


@dataclass(frozen=True, slots=True)
class Term:
    percent: Decimal
    source: Literal["medicare", "billed", "ucr"]
    percentile: int | None = None

    def __str__(self) -> str:
        source = f"ucr{self.percentile}" if self.source == "ucr" else self.source
        return f"{_percent_text(self.percent)}% {source}"


@dataclass(frozen=True, slots=True)
class Call:
    function: Literal["max", "min"]
    arguments: tuple[Benchmark, ...]

    def __str__(self) -> str:
        return f"{self.function}({', '.join(str(argument) for argument in self.arguments)})"


Benchmark = Term | Call


def _percent_text(percent: Decimal) -> str:
    text = format(percent.normalize(), "f")
    return text


def terms_of(node: Benchmark) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    result: list[Term] = []
    for argument in node.arguments:
        result.extend(terms_of(argument))
    return result


def parse_benchmark(text: str) -> Benchmark:
    tokens: list[tuple[str, str, int]] = []
    position = 0
    source = text or ""
    while position < len(source):
        if source[position:].strip() == "":
            break
        match = _TOKEN.match(source, position)
        if match is None:
            start = position + (len(source[position:]) - len(source[position:].lstrip()))
            raise BenchmarkSyntaxError(f"unexpected character {source[start]!r}", start)
        kind = match.lastgroup
        start = match.start(kind)
        tokens.append((kind, match.group(kind).lower(), start))
        position = match.end()
    if not tokens:
        raise BenchmarkSyntaxError("empty benchmark; expected e.g. '140% medicare'", 0)
    parser = _Parser(tokens, len(source))
    node = parser.expression(0)
    if parser.index < len(tokens):
        raise BenchmarkSyntaxError(
            f"unexpected {tokens[parser.index][1]!r} after the expression", tokens[parser.index][2]
        )
    return node


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]], end: int):
        self.tokens = tokens
        self.index = 0
        self.end = end

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise BenchmarkSyntaxError(f"unexpected end; expected {expected}", self.end)
        self.index += 1
        return token

    def expect_symbol(self, symbol: str) -> None:
        kind, value, position = self.take(repr(symbol))
        if kind != "symbol" or value != symbol:
            raise BenchmarkSyntaxError(f"expected {symbol!r}, got {value!r}", position)

    def expression(self, depth: int) -> Benchmark:
        if depth > MAX_DEPTH:
            token = self.peek()
            raise BenchmarkSyntaxError("nested too deeply", token[2] if token else self.end)
        token = self.peek()
        if token is None:
            raise BenchmarkSyntaxError("unexpected end; expected a term like '140% medicare' or max(...)", self.end)
        kind, value, position = token
        if kind == "word" and value in ("max", "min"):
            self.index += 1
            self.expect_symbol("(")
            arguments = [self.expression(depth + 1)]
            while True:
                kind2, value2, position2 = self.take("',' or ')'")
                if kind2 == "symbol" and value2 == ")":
                    break
                if kind2 != "symbol" or value2 != ",":
                    raise BenchmarkSyntaxError(f"expected ',' or ')', got {value2!r}", position2)
                arguments.append(self.expression(depth + 1))
            if len(arguments) < 2:
                raise BenchmarkSyntaxError(f"{value}() needs at least two arguments", position)
            if len(arguments) > MAX_ARGUMENTS:
                raise BenchmarkSyntaxError(f"{value}() takes at most {MAX_ARGUMENTS} arguments", position)
            return Call(value, tuple(arguments))  # type: ignore[arg-type]
        return self.term()

    def term(self) -> Term:
        kind, value, position = self.take("a term")
        percent = Decimal(100)
        if kind == "number":
            percent = Decimal(value)
            if percent <= 0 or percent > 1000:
                raise BenchmarkSyntaxError(f"percent must be > 0 and <= 1000, got {value}", position)
            self.expect_symbol("%")
            kind, value, position = self.take("medicare, billed or ucrNN")
        if kind != "word":
            raise BenchmarkSyntaxError(f"expected medicare, billed or ucrNN, got {value!r}", position)
        if value in ("medicare", "billed"):
            return Term(percent, value)  # type: ignore[arg-type]
        percentile_text = None
        match = _UCR.fullmatch(value)
        if match:
            percentile_text = match.group(1)
        elif value == "ucr":
            following = self.peek()
            if following is not None and following[0] == "number":
                percentile_text = following[1]
                self.index += 1
            elif following is not None and following[0] == "word" and re.fullmatch(r"p\d+", following[1]):
                percentile_text = following[1][1:]
                self.index += 1
            else:
                raise BenchmarkSyntaxError("ucr needs a percentile, e.g. ucr80", position)
        else:
            raise BenchmarkSyntaxError(f"unknown source {value!r}; expected medicare, billed or ucrNN", position)
        percentile = int(percentile_text)
        if percentile not in UCR_PERCENTILES:
            raise BenchmarkSyntaxError(
                f"UCR percentile {percentile} is not one of {', '.join(map(str, UCR_PERCENTILES))}", position
            )
        return Term(percent, "ucr", percentile)
