"""Is a remittance governed by the federal No Surprises Act process, a state process, neither, or unclear?

``classify(event, context=None) -> NSAClassification`` (category, bounded reason code, evidence, detail).

Evidence read
-------------
- RARCs of the claim (MIA/MOA) and of every service line (LQ*HE). Groups (labels are ours, after
  DOMAIN.md; the official X12 texts are not shipped):
  * federal process: N859 (the federal process applies; DOMAIN.md lists "N858/N859 (state/federal process
    applies)" in that order, so N858 = state, N859 = federal);
  * open-negotiation notices: N876 (notice of denial) / N877 (initial payment): open negotiation may start;
  * cost share from the QPA: N860, N862, N869, N870 (the QPA is the federal recognized amount);
  * final payment: N874 (via open negotiation) / N875 (via IDR): the dispute is over, the case is resolved;
  * NSA scope (federal or state): N830 (processed under NSA / balance-billing rules), N864 (emergency),
    N865 (non-emergency by an OON provider at an in-network facility), N866 (air ambulance);
  * state: N858 (state process applies), N867 / N868 / N871 / N872 (specified state law or All-Payer Model);
  * N884: the NSA may apply (payer asks for information); N885: the NSA does not apply.
- Claim filing indicator CLP06: MA, MB (Medicare A/B), 16 (HMO Medicare risk = Medicare Advantage),
  MC (Medicaid), CH (TRICARE/CHAMPUS) are outside the NSA; so are the excepted benefits WC (workers'
  compensation), AM (automobile medical) and LM (liability medical). ClaimContext.product_type naming
  Medicare, Medicare Advantage (MA), Medicaid, CHIP or TRICARE is read the same way.
- Emergency: place of service 23 (ClaimContext.place_of_service_code, or CLP08 on a professional claim:
  CLP08 is the facility type code on an institutional claim, recognised by a DRG, a revenue code or an
  NU qualifier on a line), emergency department visit codes 99281-99285, revenue codes 045x / 0981.
  Air ambulance: HCPCS A0430, A0431, A0435, A0436.
- ClaimContext flags: emergency, air_ambulance, in_network_facility without notice_and_consent,
  notice_and_consent, state_law_applies.

Precedence (the first rule that matches decides)
------------------------------------------------
1. Excluded program / excepted benefit (CLP06 or product type) -> not_applicable (excluded_program,
   excepted_benefit); but if a federal or NSA-scope RARC is present too -> unknown
   (conflict_excluded_program).
2. N885 (NSA does not apply) -> not_applicable (rarc_nsa_not_applicable); but if any positive NSA
   evidence is present (federal or scope RARC, context flag, emergency / air-ambulance code) -> unknown
   (conflict_not_applicable): the payer's denial of NSA scope is exactly what a provider may dispute.
3. State signals (state RARC, or context.state_law_applies) -> state (rarc_state_process,
   context_state_law); but with a federal RARC (N859, N860/N862/N869/N870, N874-N877) -> unknown
   (conflict_state_federal), and a state RARC contradicted by context.state_law_applies=False -> unknown
   (conflict_state_context).
4. Federal RARCs -> federal; the reason, in this order: rarc_open_negotiation_notice (N876/N877),
   rarc_final_payment (N874/N875), rarc_federal_process (N859), rarc_qpa_cost_share.
   A final-payment code beside an open-negotiation notice is not read as final (the case stays open).
5. NSA-scope RARCs (N830, N864-N866) with no state signal -> federal (rarc_nsa_scope).
6. Context / claim evidence -> federal, reason in this order: context_emergency, context_air_ambulance,
   context_in_network_facility, emergency_place_of_service, emergency_service_code, air_ambulance_service.
7. N884 (may apply) -> unknown (rarc_nsa_may_apply).
8. context: in-network facility with valid notice and consent -> not_applicable (notice_and_consent).
9. Nothing -> not_applicable (no_nsa_signal).
The rule: when signals disagree and one reading would stop reminders, the answer is "unknown", which
is tracked like "federal" so that no window is missed silently.

Reason codes are the bounded ``schemas.nsa.Reason`` set (metric labels).
"""

from __future__ import annotations

from schemas.claims import ClaimContext
from schemas.nsa import NSAClassification, Reason
from schemas.remittance import RemittanceEvent

FEDERAL_PROCESS_RARCS = frozenset({"N859"})
OPEN_NEGOTIATION_NOTICE_RARCS = frozenset({"N876", "N877"})
QPA_COST_SHARE_RARCS = frozenset({"N860", "N862", "N869", "N870"})
FINAL_PAYMENT_RARCS = frozenset({"N874", "N875"})
NSA_SCOPE_RARCS = frozenset({"N830", "N864", "N865", "N866"})
STATE_RARCS = frozenset({"N858", "N867", "N868", "N871", "N872"})
MAY_APPLY_RARCS = frozenset({"N884"})
NOT_APPLICABLE_RARCS = frozenset({"N885"})

FEDERAL_RARCS = FEDERAL_PROCESS_RARCS | OPEN_NEGOTIATION_NOTICE_RARCS | QPA_COST_SHARE_RARCS | FINAL_PAYMENT_RARCS
NSA_RARCS = FEDERAL_RARCS | NSA_SCOPE_RARCS | STATE_RARCS | MAY_APPLY_RARCS | NOT_APPLICABLE_RARCS

RARC_LABELS: dict[str, str] = {
    "N830": "processed under NSA / balance-billing rules",
    "N858": "state process applies",
    "N859": "federal process applies",
    "N860": "cost share from the QPA",
    "N862": "cost share from the QPA",
    "N864": "NSA emergency services",
    "N865": "NSA non-emergency services at an in-network facility",
    "N866": "NSA air ambulance",
    "N867": "state law / all-payer model",
    "N868": "state law / all-payer model",
    "N869": "cost share from the QPA",
    "N870": "cost share from the QPA",
    "N871": "state law / all-payer model",
    "N872": "state law / all-payer model",
    "N874": "final payment via open negotiation",
    "N875": "final payment via IDR",
    "N876": "notice of denial: open negotiation may start",
    "N877": "initial payment: open negotiation may start",
    "N884": "NSA may apply",
    "N885": "NSA does not apply",
}
"""Our own short labels (not the X12 descriptor texts)."""

EXCLUDED_FILING_INDICATORS = {
    "MA": "Medicare Part A",
    "MB": "Medicare Part B",
    "16": "Medicare Advantage HMO",
    "MC": "Medicaid",
    "CH": "TRICARE",
}
EXCEPTED_BENEFIT_FILING_INDICATORS = {
    "WC": "workers' compensation",
    "AM": "automobile medical",
    "LM": "liability medical",
}
EXCLUDED_PRODUCT_WORDS = ("MEDICARE", "MEDICAID", "CHIP", "TRICARE")
EXCLUDED_PRODUCT_TYPES = frozenset({"MA", "MAPD", "MA-PD", "DSNP", "D-SNP"})

EMERGENCY_PLACE_OF_SERVICE = "23"
EMERGENCY_VISIT_CODES = frozenset({"99281", "99282", "99283", "99284", "99285"})
AIR_AMBULANCE_CODES = frozenset({"A0430", "A0431", "A0435", "A0436"})
EMERGENCY_REVENUE_PREFIX = "045"
EMERGENCY_PROFESSIONAL_REVENUE_CODE = "0981"

DETAILS: dict[str, str] = {
    "excluded_program": "Medicare, Medicaid, CHIP and TRICARE claims are outside the No Surprises Act.",
    "excepted_benefit": "Workers' compensation, automobile and liability coverage are outside the NSA.",
    "rarc_nsa_not_applicable": "The payer states the No Surprises Act does not apply (N885).",
    "notice_and_consent": "Services at an in-network facility with valid notice and consent.",
    "no_nsa_signal": "No remark code, claim data or context places the claim under the No Surprises Act.",
    "rarc_state_process": "A state process / specified state law or All-Payer Model applies (remark codes).",
    "context_state_law": "The claim context says a specified state law or All-Payer Model sets the amount.",
    "rarc_federal_process": "The payer states the federal process applies (N859).",
    "rarc_open_negotiation_notice": "NSA initial payment or notice of denial: open negotiation may start.",
    "rarc_qpa_cost_share": "Cost share computed from the QPA: federal NSA payment rules.",
    "rarc_final_payment": "Final payment after open negotiation or IDR: nothing left to dispute.",
    "rarc_nsa_scope": "Processed under NSA rules, no state process signalled: federal process presumed.",
    "context_emergency": "Emergency services (claim context) with no state process signalled.",
    "context_air_ambulance": "Out-of-network air ambulance (claim context).",
    "context_in_network_facility": "OON services at an in-network facility without notice and consent.",
    "emergency_place_of_service": "Place of service 23 (emergency room) with no state process signalled.",
    "emergency_service_code": "Emergency department visit / revenue code with no state process signalled.",
    "air_ambulance_service": "Air ambulance service code.",
    "rarc_nsa_may_apply": "The payer says the NSA may apply (N884) and nothing else decides.",
    "conflict_excluded_program": "Excluded program on the claim but NSA remark codes too: check the claim.",
    "conflict_not_applicable": "The payer says the NSA does not apply but the claim shows NSA evidence.",
    "conflict_state_federal": "Both state-process and federal-process signals: check which process applies.",
    "conflict_state_context": "State-process remark code but the claim context says no state law applies.",
}


def remark_codes(event: RemittanceEvent) -> list[str]:
    """Claim (MIA/MOA) and line (LQ*HE) remark codes, upper-cased, first occurrence order, no duplicates."""
    seen: dict[str, None] = {}
    for code in event.remark_codes:
        seen.setdefault(code.strip().upper(), None)
    for line in event.service_lines:
        for code in line.remark_codes:
            seen.setdefault(code.strip().upper(), None)
    return [code for code in seen if code]


def looks_institutional(event: RemittanceEvent) -> bool:
    """An institutional claim: CLP08 is then a facility type code, not a place of service."""
    if event.drg_code:
        return True
    return any(line.revenue_code or line.procedure_qualifier.upper() == "NU" for line in event.service_lines)


def _revenue_codes(event: RemittanceEvent) -> list[str]:
    codes = []
    for line in event.service_lines:
        if line.revenue_code:
            codes.append(line.revenue_code.strip().zfill(4))
        if line.procedure_qualifier.upper() == "NU":
            codes.append(line.procedure_code.strip().zfill(4))
    return codes


def _procedure_codes(event: RemittanceEvent) -> list[str]:
    codes = []
    for line in event.service_lines:
        if line.procedure_qualifier.upper() in {"HC", "AD"}:
            codes.append(line.procedure_code.strip().upper())
            if line.original_procedure_code:
                codes.append(line.original_procedure_code.strip().upper())
    return codes


def _program_exclusion(event: RemittanceEvent, context: ClaimContext | None) -> tuple[Reason, str] | None:
    indicator = (event.claim_filing_indicator or "").strip().upper()
    if indicator in EXCLUDED_FILING_INDICATORS:
        return "excluded_program", f"CLP06={indicator}"
    if indicator in EXCEPTED_BENEFIT_FILING_INDICATORS:
        return "excepted_benefit", f"CLP06={indicator}"
    if context is not None and context.product_type:
        product = context.product_type.strip().upper()
        if product in EXCLUDED_PRODUCT_TYPES or any(word in product for word in EXCLUDED_PRODUCT_WORDS):
            return "excluded_program", f"context.product_type={context.product_type.strip()}"
    return None


def _positive_evidence(event: RemittanceEvent, context: ClaimContext | None) -> list[tuple[Reason, str]]:
    """Claim data and context that place the claim in NSA scope, in reason-precedence order."""
    found: list[tuple[Reason, str]] = []
    if context is not None:
        if context.emergency:
            found.append(("context_emergency", "context.emergency"))
        if context.air_ambulance:
            found.append(("context_air_ambulance", "context.air_ambulance"))
        if context.in_network_facility is True and context.notice_and_consent is not True:
            found.append(("context_in_network_facility", "context.in_network_facility"))
    place = context.place_of_service_code.strip() if context and context.place_of_service_code else None
    if place is None and event.facility_type_code and not looks_institutional(event):
        place = event.facility_type_code.strip()
    if place == EMERGENCY_PLACE_OF_SERVICE:
        found.append(("emergency_place_of_service", f"POS={place}"))
    procedures = _procedure_codes(event)
    for code in procedures:
        if code in EMERGENCY_VISIT_CODES:
            found.append(("emergency_service_code", f"CPT={code}"))
            break
    else:
        for code in _revenue_codes(event):
            if code.startswith(EMERGENCY_REVENUE_PREFIX) or code == EMERGENCY_PROFESSIONAL_REVENUE_CODE:
                found.append(("emergency_service_code", f"REV={code}"))
                break
    for code in procedures:
        if code in AIR_AMBULANCE_CODES:
            found.append(("air_ambulance_service", f"HCPCS={code}"))
            break
    return found


def _result(category: str, reason: Reason, evidence: list[str]) -> NSAClassification:
    unique = list(dict.fromkeys(evidence))
    return NSAClassification(category=category, reason=reason, evidence=unique, detail=DETAILS[reason])


def classify(event: RemittanceEvent, context: ClaimContext | None = None) -> NSAClassification:
    """Classify one remittance (with its claim context when known). Precedence: module docstring."""
    codes = remark_codes(event)
    nsa_codes = [code for code in codes if code in NSA_RARCS]
    code_set = set(nsa_codes)
    federal = code_set & FEDERAL_RARCS
    scope = code_set & NSA_SCOPE_RARCS
    state = code_set & STATE_RARCS
    positive = _positive_evidence(event, context)
    positive_evidence = [item for _, item in positive]
    context_state = context.state_law_applies if context is not None else None

    exclusion = _program_exclusion(event, context)
    if exclusion is not None:
        reason, item = exclusion
        if federal or scope:
            return _result("unknown", "conflict_excluded_program", [item, *nsa_codes])
        return _result("not_applicable", reason, [item, *nsa_codes])

    if code_set & NOT_APPLICABLE_RARCS:
        if federal or scope or positive:
            return _result("unknown", "conflict_not_applicable", [*nsa_codes, *positive_evidence])
        return _result("not_applicable", "rarc_nsa_not_applicable", nsa_codes)

    if state or context_state is True:
        evidence = [*nsa_codes, *(["context.state_law_applies"] if context_state is True else [])]
        if federal:
            return _result("unknown", "conflict_state_federal", evidence)
        if state and context_state is False:
            return _result("unknown", "conflict_state_context", [*nsa_codes, "context.state_law_applies=false"])
        return _result("state", "rarc_state_process" if state else "context_state_law", evidence)

    if federal:
        if federal & OPEN_NEGOTIATION_NOTICE_RARCS:
            reason: Reason = "rarc_open_negotiation_notice"
        elif federal & FINAL_PAYMENT_RARCS:
            reason = "rarc_final_payment"
        elif federal & FEDERAL_PROCESS_RARCS:
            reason = "rarc_federal_process"
        else:
            reason = "rarc_qpa_cost_share"
        return _result("federal", reason, [*nsa_codes, *positive_evidence])

    if scope:
        return _result("federal", "rarc_nsa_scope", [*nsa_codes, *positive_evidence])

    if positive:
        return _result("federal", positive[0][0], [*nsa_codes, *positive_evidence])

    if code_set & MAY_APPLY_RARCS:
        return _result("unknown", "rarc_nsa_may_apply", nsa_codes)

    if context is not None and context.in_network_facility is True and context.notice_and_consent is True:
        return _result("not_applicable", "notice_and_consent", ["context.notice_and_consent"])

    return _result("not_applicable", "no_nsa_signal", [])


def is_final_payment(classification: NSAClassification) -> bool:
    """True when the remittance is the final payment of a finished dispute (N874/N875 decided it)."""
    return classification.reason == "rarc_final_payment"
