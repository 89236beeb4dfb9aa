"""Property: balanced claims, written as 835 text with random delimiters and layout, parse back unchanged."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingestion.phi import patient_key
from tests.unit.test_x12_support import KEY, check_items, dead_letters, events, parse_text

ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
# delimiters never used inside the generated data (which is [A-Z0-9.-] only)
DELIMITERS = "*|!^~:>+{}#$%&@\\"

amounts = st.integers(min_value=-5_000_000, max_value=5_000_000).map(lambda cents: Decimal(cents).scaleb(-2))
codes = st.text(ALNUM, min_size=1, max_size=6)
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2039, 12, 31))

triplets = st.tuples(codes, amounts, st.one_of(st.none(), st.integers(0, 99).map(Decimal)))
cas_segments = st.tuples(st.sampled_from(["CO", "PR", "OA", "PI", "CR"]), st.lists(triplets, min_size=1, max_size=6))

lines = st.fixed_dictionaries(
    {
        "qualifier": st.sampled_from(["HC", "AD", "NU", "ZZ", "IV", "N4", "WK"]),
        "code": codes,
        "modifiers": st.lists(st.text(ALNUM, min_size=2, max_size=2), max_size=4),
        "original": st.one_of(st.none(), codes),
        "charge": amounts,
        "units": st.one_of(st.none(), st.integers(0, 999).map(Decimal)),
        "cas": st.lists(cas_segments, max_size=3),
        "date": st.one_of(st.none(), dates),
        "control": st.one_of(st.none(), codes),
        "allowed": st.one_of(st.none(), amounts),
        "remarks": st.lists(codes, max_size=2),
    }
)

claims = st.fixed_dictionaries(
    {
        "pcn": codes,
        "status": st.sampled_from(["1", "2", "3", "4", "19", "22", "23"]),
        "charge": amounts,
        "responsibility": st.one_of(st.none(), amounts),
        "filing": st.sampled_from(["12", "13", "14", "15", "16", "CI", "HM", "MA", "MB", "MC", ""]),
        "payer_claim_id": codes,
        "member": st.one_of(st.none(), codes),
        "npi": st.one_of(st.none(), st.text("0123456789", min_size=10, max_size=10)),
        "cas": st.lists(cas_segments, max_size=2),
        "lines": st.lists(lines, max_size=4),
    }
)

layouts = st.fixed_dictionaries(
    {
        "delimiters": st.permutations(DELIMITERS).map(lambda chars: chars[:4]),
        "newline_terminator": st.booleans(),
        "line_break": st.sampled_from(["", "\n", "\r\n", "mixed"]),
        "indent": st.sampled_from(["", "  ", "\t", "mixed"]),
        "chunk_size": st.sampled_from([256, 300, 1000, 4096, 1 << 20]),
    }
)


def money(value: Decimal, strip: bool) -> str:
    text = format(value, "f")
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".") or "0"
    return "0" if text in ("-0", "") else text


def cas_total(groups) -> Decimal:
    return sum((amount for _, triples in groups for _, amount, _ in triples), Decimal(0))


def cas_elements(group, triples, strip):
    elements = ["CAS", group]
    for reason, amount, quantity in triples:
        elements += [reason, money(amount, strip), "" if quantity is None else str(quantity)]
    while elements[-1] == "":
        elements.pop()
    return elements


def write_835(claim_list, layout, payer_id, rng) -> tuple[str, list[Decimal]]:
    element, component, repetition, terminator = layout["delimiters"]
    if layout["newline_terminator"]:
        terminator = "\n"
    strip = rng.draw(st.booleans())
    segments = []
    paid_amounts = []
    for claim in claim_list:
        line_total = Decimal(0)
        for line in claim["lines"]:
            line["paid"] = line["charge"] - cas_total(line["cas"])
            line_total += cas_total(line["cas"])
        claim["paid"] = claim["charge"] - cas_total(claim["cas"]) - line_total
        paid_amounts.append(claim["paid"])
    total = sum(paid_amounts, Decimal(0))
    isa = [
        "ISA", "00", " " * 10, "00", " " * 10, "ZZ", "SENDER".ljust(15), "ZZ", "RECEIVER".ljust(15),
        "250101", "1200", repetition, "00501", "000000042", "0", "P", component,
    ]  # fmt: skip
    segments.append(isa)
    segments.append(["GS", "HP", "S", "R", "20250101", "1200", "42", "X", "005010X221A1"])
    body = [
        ["ST", "835", "0042", "005010X221A1"],
        ["BPR", "I", money(total, strip), "C", "ACH", "CCP", "01", "1", "DA", "2", "3", "", "01", "4", "DA", "5",
         "20250102"],
        ["TRN", "1", "TRACE42", "1999999999"],
        ["N1", "PR", "PROPERTY PLAN", "XV", payer_id],
        ["N1", "PE", "PROPERTY CLINIC", "XX", "1234567893"],
        ["LX", "1"],
    ]  # fmt: skip
    for claim in claim_list:
        clp = ["CLP", claim["pcn"], claim["status"], money(claim["charge"], strip), money(claim["paid"], strip)]
        clp += ["" if claim["responsibility"] is None else money(claim["responsibility"], strip)]
        clp += [claim["filing"], claim["payer_claim_id"]]
        while clp[-1] == "":
            clp.pop()
        body.append(clp)
        for group, triples in claim["cas"]:
            body.append(cas_elements(group, triples, strip))
        if claim["member"] is not None:
            body.append(["NM1", "QC", "1", "NAME", "GIVEN", "", "", "", "MI", claim["member"]])
        if claim["npi"] is not None:
            body.append(["NM1", "82", "1", "DOCTOR", "GIVEN", "", "", "", "XX", claim["npi"]])
        for line in claim["lines"]:
            composite = component.join([line["qualifier"], line["code"], *line["modifiers"]])
            svc = ["SVC", composite, money(line["charge"], strip), money(line["paid"], strip), ""]
            svc.append("" if line["units"] is None else str(line["units"]))
            svc.append("" if line["original"] is None else component.join([line["qualifier"], line["original"]]))
            while svc[-1] == "":
                svc.pop()
            body.append(svc)
            if line["date"] is not None:
                body.append(["DTM", "472", line["date"].strftime("%Y%m%d")])
            for group, triples in line["cas"]:
                body.append(cas_elements(group, triples, strip))
            if line["control"] is not None:
                body.append(["REF", "6R", line["control"]])
            if line["allowed"] is not None:
                body.append(["AMT", "B6", money(line["allowed"], strip)])
            for remark in line["remarks"]:
                body.append(["LQ", "HE", remark])
    body.append(["SE", str(len(body) + 1), "0042"])
    segments += body
    segments += [["GE", "1", "42"], ["IEA", "1", "000000042"]]

    pieces = []
    for segment in segments:
        indent = layout["indent"]
        if indent == "mixed":
            indent = rng.draw(st.sampled_from(["", " ", "\t", "   "]))
        pieces.append(indent + element.join(segment) + terminator)
        if terminator != "\n":
            line_break = layout["line_break"]
            if line_break == "mixed":
                line_break = rng.draw(st.sampled_from(["", "\n", "\r\n"]))
            pieces.append(line_break)
    text = "".join(pieces)
    if layout["indent"] and not layout["newline_terminator"]:
        text = text.lstrip()  # the file itself starts with the ISA (indentation is *between* segments)
    return text, paid_amounts


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(claim_list=st.lists(claims, min_size=1, max_size=6), layout=layouts, data=st.data())
def test_balanced_claims_round_trip(claim_list, layout, data):
    payer_id = "PAYER42"
    text, paid_amounts = write_835(claim_list, layout, payer_id, data)
    items, summary = parse_text(text, chunk_size=layout["chunk_size"])
    check_items(items, summary)
    assert dead_letters(items) == []
    assert summary.warnings == []
    parsed = events(items)
    assert len(parsed) == len(claim_list) == summary.claims_seen
    for claim, event in zip(claim_list, parsed, strict=True):
        assert event.patient_control_number == claim["pcn"]
        assert event.status_code == claim["status"]
        assert event.charge_amount == claim["charge"]
        assert event.paid_amount == claim["paid"]
        assert event.patient_responsibility_amount == claim["responsibility"]
        assert event.claim_filing_indicator == (claim["filing"] or None)
        assert event.payer_claim_id == claim["payer_claim_id"]
        assert event.rendering_provider_npi == claim["npi"]
        expected_key = patient_key(KEY, payer_id, claim["member"]) if claim["member"] else None
        assert event.patient_key == expected_key
        assert [(a.group_code, a.reason_code, a.amount, a.quantity) for a in event.adjustments] == [
            (group, reason, amount, quantity) for group, triples in claim["cas"] for reason, amount, quantity in triples
        ]
        assert event.balance_issues == []
        assert len(event.service_lines) == len(claim["lines"])
        for index, (line, parsed_line) in enumerate(zip(claim["lines"], event.service_lines, strict=True)):
            assert parsed_line.line_index == index
            assert parsed_line.procedure_qualifier == line["qualifier"]
            assert parsed_line.procedure_code == line["code"]
            assert parsed_line.modifiers == line["modifiers"]
            assert parsed_line.original_procedure_code == line["original"]
            assert parsed_line.charge_amount == line["charge"]
            assert parsed_line.paid_amount == line["paid"]
            assert parsed_line.units == (Decimal(1) if line["units"] is None else line["units"])
            assert parsed_line.service_date == line["date"]
            assert parsed_line.line_control_number == line["control"]
            assert parsed_line.reported_allowed_amount == line["allowed"]
            adjustments = [
                (group, reason, amount, quantity)
                for group, triples in line["cas"]
                for reason, amount, quantity in triples
            ]
            assert [(a.group_code, a.reason_code, a.amount, a.quantity) for a in parsed_line.adjustments] == adjustments
            patient = sum((amount for group, _, amount, _ in adjustments if group == "PR"), Decimal(0))
            assert parsed_line.derived_allowed_amount == line["paid"] + patient
            assert parsed_line.remark_codes == line["remarks"]
        line_dates = [line["date"] for line in claim["lines"] if line["date"] is not None]
        assert event.service_date_from == (min(line_dates) if line_dates else None)
        assert event.service_date_to == (max(line_dates) if line_dates else None)
    assert summary.unbalanced_transactions == 0
    assert sum((event.paid_amount for event in parsed), Decimal(0)) == sum(paid_amounts, Decimal(0))
