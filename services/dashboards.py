"""The Grafana dashboards of claimwatch, generated from code.

``python -m services.dashboards`` writes ``deploy/grafana/dashboards/*.json``; ``--check`` exits non-zero
when the committed files differ from what this module generates (tests/unit/test_observability_dashboards.py
does the same). Dashboards follow the Grafana 11 JSON model (schemaVersion 39) and query the Prometheus data
source provisioned with uid ``prometheus`` (deploy/grafana/provisioning/datasources/prometheus.yml).

Every query uses only metrics of the catalog (services/metrics.py) - plus ``up``, which Prometheus itself
records for every scrape target. For tests that run the queries against a real Prometheus:

- ``all_panel_queries()`` lists ``(dashboard title, panel title, expr)`` for every panel target;
- ``render_query(expr, variables)`` replaces Grafana's macros ($__range, $__rate_interval, $__interval)
  and the dashboards' template variables ($state, ...) so that Prometheus can evaluate the expression.

Totals over the dashboard's time range use ``window_total``: ``increase()`` alone never counts the first
value of a counter child born inside the range (claimwatch creates a payer/state/specialty child at its
first increment), which on a fresh stream hides most of the activity. See deploy/prometheus/rules.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DATASOURCE_UID = "prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39
DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
GRID_WIDTH = 24
USA_STATES_GAZETTEER = "public/gazetteer/usa-states.json"

PANEL_TYPES = frozenset({"stat", "timeseries", "bargauge", "table", "geomap", "piechart", "text"})
"""Grafana 11 core panel types used by the dashboards."""

MACRO_DEFAULTS: dict[str, str] = {
    "__range": "15m",
    "__rate_interval": "1m",
    "__interval": "15s",
}
"""Values ``render_query`` gives Grafana's macros unless told otherwise."""

PROMETHEUS_SERIES = frozenset({"up"})
"""Series that Prometheus records itself (not in the claimwatch catalog) and that queries may use."""

CLAIM_LABEL_MATCHERS = 'payer_group=~"$payer_group", state=~"$state", specialty_group=~"$specialty_group"'
SCA_LABEL_MATCHERS = 'rule=~"$rule", state=~"$state", specialty_group=~"$specialty_group"'
NSA_LABEL_MATCHERS = 'classification=~"$classification", deadline=~"$deadline"'
COMPARABLE = 'status!="reversal"'
"""Claims that count in a share: every outcome except reversals (same as the alert rules)."""


# --- PromQL helpers ----------------------------------------------------------------------------------
def selector(metric: str, *matchers: str) -> str:
    inner = ", ".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}" if inner else metric


def _by(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def window_total(metric: str, *matchers: str, by: Sequence[str] = (), window: str = "$__range") -> str:
    """Sum of a counter's growth over ``window``, counting series born inside the window in full."""
    series = selector(metric, *matchers)
    return (
        f"sum{_by(by)} ((increase({series}[{window}]) and {series} offset {window})"
        f" or ({series} unless {series} offset {window}))"
    )


def per_hour(metric: str, *matchers: str, by: Sequence[str] = ()) -> str:
    """A counter's rate, in units per hour, for time series panels."""
    return f"sum{_by(by)} (rate({selector(metric, *matchers)}[$__rate_interval])) * 3600"


def ratio(numerator: str, denominator: str, by: Sequence[str] = ()) -> str:
    on = f" on ({', '.join(by)})" if by else ""
    return f"{numerator}\n/{on}\n{denominator}"


def rolling_ratio(numerator: str, denominator: str, by: Sequence[str], window: str = "1h") -> str:
    """Ratio of two counters' growth over a rolling window, for time series panels."""
    return (
        f"sum{_by(by)} (increase({numerator}[{window}]))\n/\nsum{_by(by)} (increase({denominator}[{window}]))"
    )


def quantile(q: float, bucket_selector: str, window: str, by: Sequence[str] = ()) -> str:
    function = "rate" if window == "$__rate_interval" else "increase"
    return f"histogram_quantile({q}, sum by ({', '.join(['le', *by])}) ({function}({bucket_selector}[{window}])))"


# --- the dashboard model --------------------------------------------------------------------------------
@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def model(self, ref_id: str) -> dict:
        target = {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "instant": self.instant,
            "refId": ref_id,
        }
        if self.table:
            target["format"] = "table"
        return target


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> dict:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


GREEN = ((None, "green"),)


def _field_defaults(unit: str, thresholds: Sequence[tuple[float | None, str]], **extra: object) -> dict:
    defaults: dict = {"unit": unit, "thresholds": _thresholds(thresholds), "mappings": []}
    defaults.update(extra)
    return defaults


def _reduce() -> dict:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


@dataclass
class Panel:
    type: str
    title: str
    description: str
    targets: list[Target]
    width: int
    height: int
    field_defaults: dict
    options: dict
    overrides: list = field(default_factory=list)
    transformations: list = field(default_factory=list)

    def model(self, panel_id: int, x: int, y: int) -> dict:
        model = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {"defaults": self.field_defaults, "overrides": self.overrides},
            "options": self.options,
            "targets": [target.model(chr(ord("A") + i)) for i, target in enumerate(self.targets)],
        }
        if self.transformations:
            model["transformations"] = self.transformations
        return model


def stat(
    title: str,
    description: str,
    expr: str,
    unit: str = "short",
    thresholds: Sequence[tuple[float | None, str]] = GREEN,
    width: int = 4,
    decimals: int | None = None,
) -> Panel:
    defaults = _field_defaults(unit, thresholds, color={"mode": "thresholds"})
    if decimals is not None:
        defaults["decimals"] = decimals
    return Panel(
        "stat", title, description, [Target(expr, instant=True)], width, 4, defaults,
        {
            "reduceOptions": _reduce(),
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
        },
    )


def timeseries(
    title: str,
    description: str,
    targets: list[Target],
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    minimum: float | None = 0,
) -> Panel:
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 20 if stack else 10,
        "showPoints": "never",
        "spanNulls": True,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "axisSoftMin": minimum,
    }
    defaults = _field_defaults(unit, GREEN, color={"mode": "palette-classic"}, custom=custom)
    return Panel(
        "timeseries", title, description, targets, width, height, defaults,
        {
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def bargauge(
    title: str,
    description: str,
    targets: list[Target],
    unit: str = "short",
    width: int = 8,
    height: int = 8,
    thresholds: Sequence[tuple[float | None, str]] = GREEN,
    maximum: float | None = None,
) -> Panel:
    defaults = _field_defaults(unit, thresholds, color={"mode": "continuous-GrYlRd"}, min=0)
    if maximum is not None:
        defaults["max"] = maximum
    for target in targets:
        target.instant = True
    return Panel(
        "bargauge", title, description, targets, width, height, defaults,
        {
            "reduceOptions": _reduce(),
            "orientation": "horizontal",
            "displayMode": "gradient",
            "valueMode": "color",
            "namePlacement": "auto",
            "showUnfilled": True,
            "sizing": "auto",
            "minVizWidth": 8,
            "minVizHeight": 16,
            "maxVizHeight": 300,
        },
    )


def piechart(title: str, description: str, target: Target, unit: str = "short", width: int = 8) -> Panel:
    target.instant = True
    defaults = _field_defaults(unit, GREEN, color={"mode": "palette-classic"})
    return Panel(
        "piechart", title, description, [target], width, 8, defaults,
        {
            "reduceOptions": _reduce(),
            "pieType": "donut",
            "displayLabels": ["name", "percent"],
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "values": ["value"]},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


@dataclass
class Column:
    header: str
    expr: str
    unit: str = "short"


def table(
    title: str,
    description: str,
    keys: Sequence[str],
    columns: Sequence[Column],
    width: int = 24,
    height: int = 9,
    sort_by: str | None = None,
) -> Panel:
    """A table with one row per combination of ``keys`` and one column per query (merged)."""
    targets = [Target(column.expr, instant=True, table=True) for column in columns]
    rename = {f"Value #{chr(ord('A') + i)}": column.header for i, column in enumerate(columns)}
    overrides = [
        {
            "matcher": {"id": "byName", "options": column.header},
            "properties": [{"id": "unit", "value": column.unit}],
        }
        for column in columns
        if column.unit != "short"
    ]
    defaults = _field_defaults("short", GREEN, custom={"align": "auto", "cellOptions": {"type": "auto"}})
    return Panel(
        "table", title, description, targets, width, height, defaults,
        {
            "showHeader": True,
            "cellHeight": "sm",
            "footer": {"show": False, "reducer": ["sum"], "fields": "", "countRows": False},
            "sortBy": [{"displayName": sort_by or columns[0].header, "desc": True}],
        },
        overrides=overrides,
        transformations=[
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": {name: i for i, name in enumerate([*keys, *rename.values()])},
                    "renameByName": rename,
                },
            },
        ],
    )


def state_map(title: str, description: str, expr: str, unit: str, width: int = 12, height: int = 12) -> Panel:
    """A geomap of the United States: one marker per state code (gazetteer lookup), sized by value."""
    defaults = _field_defaults(
        unit, ((None, "green"),), color={"mode": "continuous-YlRd"},
        custom={"hideFrom": {"legend": False, "tooltip": False, "viz": False}},
    )
    layer = {
        "type": "markers",
        "name": title,
        "tooltip": True,
        "location": {"mode": "lookup", "lookup": "state", "gazetteer": USA_STATES_GAZETTEER},
        "config": {
            "showLegend": True,
            "style": {
                "color": {"field": "Value", "fixed": "dark-red"},
                "opacity": 0.6,
                "size": {"field": "Value", "fixed": 5, "min": 6, "max": 40},
                "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                "symbolAlign": {"horizontal": "center", "vertical": "center"},
                "rotation": {"fixed": 0, "min": -360, "max": 360, "mode": "mod"},
                "text": {"mode": "field", "field": "state", "fixed": ""},
                "textConfig": {
                    "fontSize": 10, "offsetX": 0, "offsetY": -14, "textAlign": "center", "textBaseline": "middle",
                },
            },
        },
    }
    return Panel(
        "geomap", title, description, [Target(expr, legend="{{state}}", instant=True, table=True)],
        width, height, defaults,
        {
            "view": {"id": "coords", "lat": 38.5, "lon": -97, "zoom": 3.6, "allLayers": True},
            "controls": {
                "showZoom": True, "mouseWheelZoom": False, "showAttribution": True,
                "showScale": False, "showMeasure": False, "showDebug": False,
            },
            "basemap": {"type": "default", "name": "Basemap", "config": {}},
            "layers": [layer],
            "tooltip": {"mode": "details"},
        },
    )


@dataclass
class Variable:
    name: str
    label: str
    metric: str
    query_label: str

    @property
    def definition(self) -> str:
        return f"label_values({self.metric}, {self.query_label})"

    def model(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": DATASOURCE,
            "definition": self.definition,
            "query": {
                "qryType": 1,
                "query": self.definition,
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            "refresh": 2,
            "regex": "",
            "sort": 1,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
            "hide": 0,
            "skipUrlSync": False,
        }


@dataclass
class Dashboard:
    uid: str
    file_name: str
    title: str
    description: str
    variables: list[Variable]
    panels: list[Panel]
    time_from: str = "now-6h"
    refresh: str = "30s"

    def model(self) -> dict:
        panels, x, y, row_height = [], 0, 0, 0
        for panel_id, panel in enumerate(self.panels, start=1):
            if x + panel.width > GRID_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            panels.append(panel.model(panel_id, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["claimwatch"],
            "editable": True,
            "graphTooltip": 1,
            "fiscalYearStartMonth": 0,
            "id": None,
            "links": [
                {
                    "title": "claimwatch dashboards",
                    "type": "dashboards",
                    "tags": ["claimwatch"],
                    "asDropdown": True,
                    "includeVars": False,
                    "keepTime": True,
                    "icon": "external link",
                    "targetBlank": False,
                    "tooltip": "",
                    "url": "",
                }
            ],
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    }
                ]
            },
            "templating": {"list": [variable.model() for variable in self.variables]},
            "panels": panels,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "weekStart": "",
        }


# --- variables -------------------------------------------------------------------------------------------
STATE = Variable("state", "State", "claimwatch_claims_evaluated_total", "state")
PAYER_GROUP = Variable("payer_group", "Payer group", "claimwatch_claims_evaluated_total", "payer_group")
SPECIALTY_GROUP = Variable(
    "specialty_group", "Specialty group", "claimwatch_claims_evaluated_total", "specialty_group"
)
SCA_STATE = Variable("state", "State", "claimwatch_sca_opportunities_total", "state")
SCA_SPECIALTY_GROUP = Variable(
    "specialty_group", "Specialty group", "claimwatch_sca_opportunities_total", "specialty_group"
)
SCA_RULE = Variable("rule", "Trigger rule", "claimwatch_sca_opportunities_total", "rule")
NSA_CLASSIFICATION = Variable("classification", "Classification", "claimwatch_nsa_cases_open", "classification")
NSA_DEADLINE = Variable("deadline", "Next deadline", "claimwatch_nsa_cases_open", "deadline")
INSTANCE = Variable("instance", "Worker", "claimwatch_worker_up", "instance")
TOPIC = Variable("topic", "Topic", "claimwatch_events_in_total", "topic")

C = CLAIM_LABEL_MATCHERS
USD = "currencyUSD"
RATIO_STEPS = ((None, "red"), (0.8, "orange"), (0.95, "green"))
RATE_STEPS = ((None, "green"), (0.1, "orange"), (0.2, "red"))
CODES_NOTE = (
    " claimwatch has no per-procedure-code metric (codes are unbounded, labels must not be): for the top codes"
    " of a payer run `claimwatch audit` over its 835 files; here the top payer groups and specialty groups."
)


def _underpaid_share(by: Sequence[str] = (), window: str = "$__range") -> str:
    return ratio(
        window_total("claimwatch_claims_evaluated_total", C, 'status="underpaid"', by=by, window=window),
        window_total("claimwatch_claims_evaluated_total", C, COMPARABLE, by=by, window=window),
        by,
    )


def _denied_share(by: Sequence[str] = ()) -> str:
    return ratio(
        window_total("claimwatch_claims_evaluated_total", C, 'status="denied"', by=by),
        window_total("claimwatch_claims_evaluated_total", C, COMPARABLE, by=by),
        by,
    )


def _dollar_ratio(numerator: str, denominator: str, by: Sequence[str] = ()) -> str:
    return ratio(window_total(numerator, C, by=by), window_total(denominator, C, by=by), by)


def _pct_medicare(by: Sequence[str] = ()) -> str:
    return _dollar_ratio(
        "claimwatch_medicare_compared_allowed_dollars_total", "claimwatch_medicare_benchmark_dollars_total", by
    )


def _pct_expected(by: Sequence[str] = ()) -> str:
    return _dollar_ratio("claimwatch_allowed_dollars_total", "claimwatch_expected_dollars_total", by)


# --- the five dashboards ---------------------------------------------------------------------------------
def overview() -> Dashboard:
    underpaid = "claimwatch_underpaid_dollars_total"
    recovered = "claimwatch_recovered_dollars_total"
    return Dashboard(
        uid="claimwatch-overview",
        file_name="overview.json",
        title="claimwatch · Overview",
        description="Underpaid and recovered dollars of the group across states, payers and specialties.",
        variables=[STATE, PAYER_GROUP, SPECIALTY_GROUP],
        panels=[
            stat(
                "Underpaid dollars", "Shortfall (expected - allowed) of underpaid lines in the time range.",
                window_total(underpaid, C), USD, ((None, "orange"),), width=5,
            ),
            stat(
                "Recovered dollars", "Dollars recovered by later remittances of underpaid claims in the time range.",
                window_total(recovered, C), USD, width=5,
            ),
            stat(
                "Claims evaluated", "Claims evaluated in the time range (every outcome, reversals included).",
                window_total("claimwatch_claims_evaluated_total", C), width=4,
            ),
            stat(
                "Underpayment rate", "Share of claims (reversals excluded) paid below the expected amount.",
                _underpaid_share(), "percentunit", RATE_STEPS, width=5, decimals=1,
            ),
            stat(
                "Allowed as % of expected",
                "Allowed dollars / expected dollars of comparable lines (the expected basis: SCA, contract or "
                "out-of-network policy).",
                _pct_expected(), "percentunit", RATIO_STEPS, width=5, decimals=1,
            ),
            state_map(
                "Underpaid dollars by state",
                "Underpaid dollars in the time range, one marker per state (size and colour by dollars).",
                window_total(underpaid, C, by=["state"]), USD,
            ),
            table(
                "By state", "Underpaid, recovered, billed and paid dollars and claims per state in the time range.",
                ["state"],
                [
                    Column("Underpaid", window_total(underpaid, C, by=["state"]), USD),
                    Column("Recovered", window_total(recovered, C, by=["state"]), USD),
                    Column("Billed", window_total("claimwatch_billed_dollars_total", C, by=["state"]), USD),
                    Column("Paid", window_total("claimwatch_paid_dollars_total", C, by=["state"]), USD),
                    Column("Claims", window_total("claimwatch_claims_evaluated_total", C, by=["state"])),
                ],
                width=12, height=12,
            ),
            bargauge(
                "Underpaid dollars by payer group", "Underpaid dollars in the time range per payer group.",
                [Target(window_total(underpaid, C, by=["payer_group"]), "{{payer_group}}")], USD, width=12,
            ),
            bargauge(
                "Underpaid dollars by specialty group", "Underpaid dollars in the time range per specialty group.",
                [Target(window_total(underpaid, C, by=["specialty_group"]), "{{specialty_group}}")], USD,
                width=12,
            ),
            timeseries(
                "Underpaid and recovered dollars per hour", "Rate of underpaid and recovered dollars, per hour.",
                [
                    Target(per_hour(underpaid, C), "underpaid"),
                    Target(per_hour(recovered, C), "recovered"),
                ],
                USD,
            ),
            timeseries(
                "Underpaid dollars per hour by state", "Rate of underpaid dollars per state, per hour.",
                [Target(per_hour(underpaid, C, by=["state"]), "{{state}}")], USD, stack=True,
            ),
            bargauge(
                "Recovered dollars by payer group", "Recovered dollars in the time range per payer group.",
                [Target(window_total(recovered, C, by=["payer_group"]), "{{payer_group}}")], USD, width=12,
            ),
            timeseries(
                "Claims evaluated per hour by outcome", "Claims evaluated per hour, by status.",
                [Target(per_hour("claimwatch_claims_evaluated_total", C, by=["status"]), "{{status}}")],
                stack=True,
            ),
        ],
    )


def payer_scorecard() -> Dashboard:
    by_payer = ["payer_group"]
    evaluated = "claimwatch_claims_evaluated_total"
    return Dashboard(
        uid="claimwatch-payer-scorecard",
        file_name="payer-scorecard.json",
        title="claimwatch · Payer scorecard",
        description="How each payer group pays: as % of Medicare and of the expected amount, denial and "
        "underpayment rates.",
        variables=[PAYER_GROUP, STATE, SPECIALTY_GROUP],
        panels=[
            table(
                "Scorecard by payer group",
                "Per payer group in the time range: claims, allowed as % of Medicare (lines with a Medicare "
                "PFS amount), allowed as % of expected (comparable lines), denial and underpayment rates "
                "(reversals excluded), underpaid dollars and underpayment alerts.",
                by_payer,
                [
                    Column("Claims", window_total(evaluated, C, COMPARABLE, by=by_payer)),
                    Column("Allowed % of Medicare", _pct_medicare(by_payer), "percentunit"),
                    Column("Allowed % of expected", _pct_expected(by_payer), "percentunit"),
                    Column("Denial rate", _denied_share(by_payer), "percentunit"),
                    Column("Underpayment rate", _underpaid_share(by_payer), "percentunit"),
                    Column("Underpaid", window_total("claimwatch_underpaid_dollars_total", C, by=by_payer), USD),
                    Column("Alerts", window_total("claimwatch_underpayment_alerts_total", C, by=by_payer)),
                ],
                sort_by="Underpaid",
            ),
            bargauge(
                "Allowed as % of Medicare",
                "Allowed dollars / Medicare PFS amount of the same lines, per payer group, in the time range.",
                [Target(_pct_medicare(by_payer), "{{payer_group}}")], "percentunit", width=6,
                thresholds=((None, "red"), (1.0, "orange"), (1.5, "green")),
            ),
            bargauge(
                "Allowed as % of expected",
                "Allowed dollars / expected dollars of comparable lines, per payer group, in the time range.",
                [Target(_pct_expected(by_payer), "{{payer_group}}")], "percentunit", thresholds=RATIO_STEPS,
                maximum=1.2, width=6,
            ),
            bargauge(
                "Denial rate", "Denied claims / claims (reversals excluded), per payer group, in the time range.",
                [Target(_denied_share(by_payer), "{{payer_group}}")], "percentunit", thresholds=RATE_STEPS,
                maximum=1, width=6,
            ),
            bargauge(
                "Underpayment rate",
                "Underpaid claims / claims (reversals excluded), per payer group, in the time range.",
                [Target(_underpaid_share(by_payer), "{{payer_group}}")], "percentunit", thresholds=RATE_STEPS,
                maximum=1, width=6,
            ),
            timeseries(
                "Allowed as % of Medicare over time (rolling 1h)",
                "Allowed / Medicare PFS amount over the preceding hour, per payer group.",
                [
                    Target(
                        rolling_ratio(
                            selector("claimwatch_medicare_compared_allowed_dollars_total", C),
                            selector("claimwatch_medicare_benchmark_dollars_total", C),
                            by_payer,
                        ),
                        "{{payer_group}}",
                    )
                ],
                "percentunit", minimum=None,
            ),
            timeseries(
                "Underpayment rate over time (rolling 1h)",
                "Underpaid claims / claims (reversals excluded) over the preceding hour, per payer group.",
                [
                    Target(
                        rolling_ratio(
                            selector(evaluated, C, 'status="underpaid"'), selector(evaluated, C, COMPARABLE),
                            by_payer,
                        ),
                        "{{payer_group}}",
                    )
                ],
                "percentunit",
            ),
            timeseries(
                "Paid-to-expected ratio per line (median and p10)",
                "Allowed / expected per comparable line, from the histogram claimwatch_paid_to_expected_ratio "
                "(labelled by payer group only: the state and specialty filters do not apply).",
                [
                    Target(
                        quantile(
                            0.5, selector("claimwatch_paid_to_expected_ratio_bucket", 'payer_group=~"$payer_group"'),
                            "$__rate_interval", by_payer,
                        ),
                        "{{payer_group}} median",
                    ),
                    Target(
                        quantile(
                            0.1, selector("claimwatch_paid_to_expected_ratio_bucket", 'payer_group=~"$payer_group"'),
                            "$__rate_interval", by_payer,
                        ),
                        "{{payer_group}} p10",
                    ),
                ],
                "percentunit", height=9, minimum=None,
            ),
            bargauge(
                "Top specialty groups by underpaid dollars",
                "The 10 specialty groups with the most underpaid dollars in the time range." + CODES_NOTE,
                [
                    Target(
                        "topk(10, " + window_total("claimwatch_underpaid_dollars_total", C, by=["specialty_group"])
                        + ")",
                        "{{specialty_group}}",
                    )
                ],
                USD, width=12, height=9,
            ),
            bargauge(
                "Top payer x specialty by underpaid dollars",
                "The 10 payer group and specialty group pairs with the most underpaid dollars in the time range."
                + CODES_NOTE,
                [
                    Target(
                        "topk(10, "
                        + window_total(
                            "claimwatch_underpaid_dollars_total", C, by=["payer_group", "specialty_group"]
                        )
                        + ")",
                        "{{payer_group}} · {{specialty_group}}",
                    )
                ],
                USD, width=12, height=9,
            ),
            table(
                "Lines by pricing basis and outcome",
                "Service lines evaluated in the time range, by the basis of the expected amount (SCA, contract, "
                "out-of-network policy, none) and outcome.",
                ["basis", "status"],
                [Column("Lines", window_total("claimwatch_lines_evaluated_total", C, by=["basis", "status"]))],
                width=12, height=9,
            ),
        ],
    )


def sca_opportunities() -> Dashboard:
    s = SCA_LABEL_MATCHERS
    total = "claimwatch_sca_opportunities_total"
    open_ = "claimwatch_sca_opportunities_open"
    billed = "claimwatch_sca_opportunity_billed_dollars"
    return Dashboard(
        uid="claimwatch-sca",
        file_name="sca-opportunities.json",
        title="claimwatch · SCA opportunities",
        description="Single-case agreement and gap-exception opportunities from network adequacy triggers.",
        variables=[SCA_STATE, SCA_SPECIALTY_GROUP, SCA_RULE],
        panels=[
            stat(
                "Open opportunities", "Distinct open SCA opportunities (sum over workers).",
                f"sum(({selector(open_, s)}) or vector(0))", width=6,
            ),
            stat(
                "Billed dollars behind open opportunities",
                "Billed dollars of the claims behind the open opportunities.",
                f"sum(({selector(billed, s)}) or vector(0))", USD, width=6,
            ),
            stat(
                "Opportunity events in range", "SCA opportunities emitted or updated in the time range.",
                f"({window_total(total, s)}) or vector(0)", width=6,
            ),
            stat(
                "States with open opportunities", "States with at least one open opportunity.",
                f"count(sum by (state) ({selector(open_, s)}) > 0) or vector(0)", width=6,
            ),
            state_map(
                "Open opportunities by state", "Open SCA opportunities per state.",
                f"sum by (state) ({selector(open_, s)})", "short",
            ),
            table(
                "Open opportunities", "Open opportunities and the billed dollars behind them, per state, "
                "specialty group and trigger rule.",
                ["state", "specialty_group", "rule"],
                [
                    Column("Open", f"sum by (state, specialty_group, rule) ({selector(open_, s)})"),
                    Column("Billed", f"sum by (state, specialty_group, rule) ({selector(billed, s)})", USD),
                ],
                width=12, height=12, sort_by="Billed",
            ),
            bargauge(
                "Open opportunities by trigger rule",
                "distance_gap / count_gap: no in-network specialist within the adequacy standard; denial_gap: "
                "network denials; ma_access: Medicare Advantage access; recurrence; value.",
                [Target(f"sum by (rule) ({selector(open_, s)})", "{{rule}}")], width=12,
            ),
            bargauge(
                "Billed dollars behind open opportunities by specialty",
                "Billed dollars behind the open opportunities, per specialty group.",
                [Target(f"sum by (specialty_group) ({selector(billed, s)})", "{{specialty_group}}")], USD,
                width=12,
            ),
            timeseries(
                "Opportunity events per hour by rule", "SCA opportunities emitted or updated, per hour.",
                [Target(per_hour(total, s, by=["rule"]), "{{rule}}")], stack=True,
            ),
            timeseries(
                "Open opportunities over time by state", "Open SCA opportunities per state.",
                [Target(f"sum by (state) ({selector(open_, s)})", "{{state}}")], stack=True,
            ),
        ],
    )


def nsa_deadlines() -> Dashboard:
    n = NSA_LABEL_MATCHERS
    cases = "claimwatch_nsa_cases_open"
    buckets = ("overdue", "0-1", "2-5", "6-10", "11-30", "31+")

    def count(bucket_matcher: str) -> str:
        return f"sum({selector(cases, n, bucket_matcher)}) or vector(0)"

    return Dashboard(
        uid="claimwatch-nsa",
        file_name="nsa-deadlines.json",
        title="claimwatch · NSA deadlines",
        description="Open No Surprises Act cases by their next deadline, in business days.",
        variables=[NSA_CLASSIFICATION, NSA_DEADLINE],
        time_from="now-24h",
        panels=[
            stat(
                "Overdue", "Open cases whose next deadline has passed.", count('days_remaining="overdue"'),
                thresholds=((None, "green"), (1, "red")),
            ),
            stat(
                "Due within 1 business day", "Open cases whose next deadline is today or the next business day.",
                count('days_remaining="0-1"'), thresholds=((None, "green"), (1, "red")),
            ),
            stat(
                "Due in 2-5 business days", "Open cases whose next deadline is 2 to 5 business days away.",
                count('days_remaining="2-5"'), thresholds=((None, "green"), (1, "orange")),
            ),
            stat(
                "Due in 6-10 business days", "Open cases whose next deadline is 6 to 10 business days away.",
                count('days_remaining="6-10"'),
            ),
            stat("Open cases", "Every open NSA case.", count(""), width=8),
            bargauge(
                "Open cases by business days remaining",
                "Open cases per bucket of business days until their next deadline.",
                [Target(count(f'days_remaining="{bucket}"'), bucket) for bucket in buckets],
                width=12, thresholds=((None, "green"),),
            ),
            table(
                "Open cases by deadline", "Open cases per classification, next deadline and days remaining.",
                ["classification", "deadline", "days_remaining"],
                [Column("Cases", f"sum by (classification, deadline, days_remaining) ({selector(cases, n)})")],
                width=12, height=8,
            ),
            timeseries(
                "Open cases over time by days remaining", "Open cases per bucket of business days remaining.",
                [Target(f"sum by (days_remaining) ({selector(cases, n)})", "{{days_remaining}}")], stack=True,
            ),
            timeseries(
                "Reminders per hour by deadline", "NSA deadline reminders emitted (topic alerts.nsa-deadline).",
                [
                    Target(
                        per_hour("claimwatch_nsa_reminders_total", 'deadline=~"$deadline"', by=["deadline"]),
                        "{{deadline}}",
                    )
                ],
                stack=True,
            ),
            piechart(
                "Remittances by NSA classification",
                "Remittances classified in the time range: federal NSA, state surprise-billing law, not "
                "applicable, unknown.",
                Target(
                    window_total(
                        "claimwatch_nsa_claims_classified_total", 'classification=~"$classification"',
                        by=["classification"],
                    ),
                    "{{classification}}",
                ),
                width=12,
            ),
            bargauge(
                "Reminders in range by deadline", "Reminders emitted in the time range, per deadline.",
                [
                    Target(
                        window_total("claimwatch_nsa_reminders_total", 'deadline=~"$deadline"', by=["deadline"]),
                        "{{deadline}}",
                    )
                ],
                width=12,
            ),
        ],
    )


def pipeline_health() -> Dashboard:
    i = 'instance=~"$instance"'
    t = 'topic=~"$topic"'
    latency = selector("claimwatch_remittance_to_alert_latency_seconds_bucket", i)
    return Dashboard(
        uid="claimwatch-pipeline",
        file_name="pipeline-health.json",
        title="claimwatch · Pipeline health",
        description="Workers, throughput, dead letters, consumer lag and remittance-to-alert latency.",
        variables=[INSTANCE, TOPIC],
        time_from="now-1h",
        refresh="10s",
        panels=[
            stat(
                "Workers scraped", "Workers Prometheus scrapes successfully (up) out of the configured targets.",
                'sum(up{job="claimwatch"})', thresholds=((None, "red"), (1, "green")),
            ),
            stat(
                "Workers running agents", "Workers reporting claimwatch_worker_up = 1.",
                f"sum({selector('claimwatch_worker_up', i)}) or vector(0)",
                thresholds=((None, "red"), (1, "green")),
            ),
            stat(
                "Events in per second", "Messages consumed per second, every topic.",
                f"sum(rate({selector('claimwatch_events_in_total', i, t)}[$__rate_interval]))", "ops",
            ),
            stat(
                "Dead letters in range", "Rejected inputs sent to the dead-letter topic in the time range.",
                f"({window_total('claimwatch_dead_letters_total', i)}) or vector(0)",
                thresholds=((None, "green"), (1, "orange")),
            ),
            stat(
                "Consumer lag", "Messages not yet consumed, every topic and worker.",
                f"sum({selector('claimwatch_consumer_lag_messages', i, t)}) or vector(0)",
                thresholds=((None, "green"), (1000, "orange"), (5000, "red")),
            ),
            stat(
                "p95 remittance-to-alert latency", "95th percentile over the time range.",
                quantile(0.95, latency, "$__range"), "s", ((None, "green"), (0.5, "orange"), (1, "red")),
                decimals=3,
            ),
            timeseries(
                "Events in per second by topic", "Messages consumed per second.",
                [
                    Target(
                        f"sum by (topic) (rate({selector('claimwatch_events_in_total', i, t)}[$__rate_interval]))",
                        "{{topic}}",
                    )
                ],
                "ops",
            ),
            timeseries(
                "Events out per second by topic", "Messages produced per second.",
                [
                    Target(
                        f"sum by (topic) (rate({selector('claimwatch_events_out_total', i, t)}[$__rate_interval]))",
                        "{{topic}}",
                    )
                ],
                "ops",
            ),
            timeseries(
                "Remittance-to-alert latency", "p50, p95 and p99 from ingest to the evaluation being emitted.",
                [
                    Target(quantile(0.5, latency, "$__rate_interval"), "p50"),
                    Target(quantile(0.95, latency, "$__rate_interval"), "p95"),
                    Target(quantile(0.99, latency, "$__rate_interval"), "p99"),
                ],
                "s",
            ),
            timeseries(
                "Consumer lag by topic", "Messages not yet consumed, per topic (sum over workers).",
                [
                    Target(
                        f"sum by (topic) ({selector('claimwatch_consumer_lag_messages', i, t)})", "{{topic}}"
                    )
                ],
            ),
            timeseries(
                "Dead letters per minute by stage and reason", "Rejected inputs per minute.",
                [
                    Target(
                        f"sum by (stage, reason) (rate({selector('claimwatch_dead_letters_total', i)}"
                        "[$__rate_interval])) * 60",
                        "{{stage}}: {{reason}}",
                    )
                ],
                stack=True,
            ),
            bargauge(
                "Dead letters in range by reason", "Rejected inputs in the time range, per stage and reason.",
                [
                    Target(
                        window_total("claimwatch_dead_letters_total", i, by=["stage", "reason"]),
                        "{{stage}}: {{reason}}",
                    )
                ],
                width=12, thresholds=((None, "orange"),),
            ),
            timeseries(
                "Claims evaluated per second", "Claims evaluated per second, per worker.",
                [
                    Target(
                        f"sum by (instance) (rate({selector('claimwatch_claims_evaluated_total', i)}"
                        "[$__rate_interval]))",
                        "{{instance}}",
                    )
                ],
                "ops",
            ),
            timeseries(
                "Workers up", "1 when Prometheus scrapes the worker (up) and when its agents run (worker_up).",
                [
                    Target('up{job="claimwatch", instance=~"$instance"}', "scraped {{instance}}"),
                    Target(selector("claimwatch_worker_up", i), "agents {{instance}}"),
                ],
                width=12,
            ),
            table(
                "Reference data per worker",
                "Reference files loaded (every topic), and seconds since the worker last rebuilt its reference data.",
                ["instance"],
                [
                    Column("Files", f"sum by (instance) ({selector('claimwatch_reference_files', i)})"),
                    Column(
                        "Age",
                        "time() - max by (instance) "
                        f"({selector('claimwatch_reference_last_update_timestamp_seconds', i)})",
                        "s",
                    ),
                ],
                height=6,
            ),
        ],
    )


def dashboards() -> list[Dashboard]:
    return [overview(), payer_scorecard(), sca_opportunities(), nsa_deadlines(), pipeline_health()]


def dashboard_models() -> dict[str, dict]:
    """File name -> Grafana dashboard JSON model, for every dashboard."""
    return {dashboard.file_name: dashboard.model() for dashboard in dashboards()}


def render_json(model: Mapping) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def write_dashboards(directory: Path = DASHBOARD_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, model in dashboard_models().items():
        path = directory / file_name
        path.write_text(render_json(model), encoding="utf-8")
        written.append(path)
    return written


def stale_dashboards(directory: Path = DASHBOARD_DIR) -> list[str]:
    """File names whose committed JSON differs from the generated one (or is missing / extra)."""
    models = dashboard_models()
    stale = [
        name
        for name, model in models.items()
        if not (directory / name).is_file() or (directory / name).read_text(encoding="utf-8") != render_json(model)
    ]
    stale += [path.name for path in directory.glob("*.json") if path.name not in models]
    return sorted(stale)


# --- queries, for tests that run them against Prometheus -----------------------------------------------------
def all_panel_queries() -> list[tuple[str, str, str]]:
    """``(dashboard title, panel title, expr)`` of every panel query, with Grafana macros and variables."""
    queries = []
    for model in dashboard_models().values():
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                queries.append((model["title"], panel["title"], target["expr"]))
    return queries


def all_variables() -> list[tuple[str, str, str, str]]:
    """``(dashboard title, variable name, metric, label)`` of every template variable (label_values)."""
    return [
        (dashboard.title, variable.name, variable.metric, variable.query_label)
        for dashboard in dashboards()
        for variable in dashboard.variables
    ]


_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def render_query(expr: str, variables: Mapping[str, str] | None = None) -> str:
    """``expr`` with Grafana's macros and template variables replaced, ready for Prometheus's API.

    ``variables`` maps a name (``state``, ``__range``...) to its value. Macros default to MACRO_DEFAULTS
    ($__range 15m, $__rate_interval 1m, $__interval 15s); template variables default to ``.*`` (Grafana's
    "All", as configured by ``allValue``). Unknown ``$names`` raise ValueError.
    """
    values = {**MACRO_DEFAULTS, **{name: ".*" for _, name, _, _ in all_variables()}, **(variables or {})}

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise ValueError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
     "inf", "nan", "atan2"}
)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, labels and literals removed)."""
    text = _STRING.sub('""', render_query(expr))
    text = _BRACES.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _LABEL_LIST.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate claimwatch's Grafana dashboards (JSON).")
    parser.add_argument("--out", type=Path, default=DASHBOARD_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="only report dashboards that differ; exit 1 if any")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.check:
        stale = stale_dashboards(args.out)
        for name in stale:
            print(f"{args.out / name}: differs from services/dashboards.py (run python -m services.dashboards)")
        return 1 if stale else 0
    for path in write_dashboards(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
