"""Claims, claim context and 835 remittances of the simulated group, with planted patterns.

``Simulation(world, claims=..., start=..., weeks=...)`` draws the claims of the fictional group
(:mod:`services.simulate.world`) week by remittance week. ``Simulation.weeks()`` yields one
:class:`WeekBatch` per payment week: the 835 files of that week (one per payer, one ST per payee state and
payment run) and the ClaimContext of every claim paid for the first time that week. When the iteration is
over, ``Simulation.manifest()`` says what was planted. ``write_simulation(out_dir, ...)`` writes the whole
folder (reference/, claims.jsonl, remittances/*.835, manifest.json).

Amounts: the expected amount of every line comes from the project's own pricing engine
(``services.pricing.engine.price_claim``) with the generated reference, so an ordinary claim is allowed
exactly what claimwatch expects (status ``as_expected``) and a planted underpayment is a known share of it.
Billed charges are 2.2-3.8 times the highest Medicare amount of the state (world.charges). Money is Decimal
throughout; the 835 text writes it the X12 way (``12.5``, ``-40``).

Planted patterns (manifest ``patterns``):
- underpayment: the ``crestline`` payer group allows about 60% of the expected amount on office visits
  (99204, 99213, 99214) in the last payment week only, on a backlog batch (the spike); PEACH allows about
  66% on echocardiograms (93306) on a few claims spread over the weeks (chronic); one SCA not honored;
- reversals (CLP02 22, negated amounts) followed by a correction of the same claim (same CLP01 and CLP07)
  in the same transaction; half of them recover money (the original was underpaid, the correction pays
  the expected amount);
- secondary payer claims (CLP02 2, OA-23) after a primary payment with coinsurance;
- network denials (CARC 242/243/279) on HMO/EPO/MA claims in counties with a planted gap, and a few
  network denials where no gap exists (negative controls);
- NSA-governed emergency claims (POS 23, emergency=true, LQ*HE N830 + N877, N876 when denied);
- network gaps by county (distance and count) with at least 3 claims each (recurrence), and, outside the
  planted cells, at most 2 claims per payer + specialty + county, so that no other recurrence exists;
- the rest: ordinary claims paid as expected; AMT*B6 on some payers' claims and not on others'; CO-45,
  PR-1/2/3; CO-253 (sequestration) on the Medicare Advantage payer.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from schemas.claims import ClaimContext
from schemas.remittance import Payee as PayeeModel
from schemas.remittance import Payer as PayerModel
from schemas.remittance import Payment, RemittanceEvent, ServiceLine, SourceLocation
from services.ingestion.phi import patient_key
from services.pricing.engine import price_claim
from services.pricing.reference import PricingReference, load_pricing_reference
from services.settings import DEMO_HMAC_KEY
from services.simulate.world import (
    CATCHMENTS,
    CHRONIC_ALLOWED_SHARE,
    CHRONIC_CODES,
    CHRONIC_PAYER,
    FIRST_NAMES,
    GAP_CONTROL_PAYER,
    GAPS,
    LAST_NAMES,
    LOCATION_BY_ZIP,
    PAYER_BY_ID,
    PAYERS,
    RECEIVER_ID,
    SCAS,
    SECONDARY_PAYERS,
    SPECIALTIES,
    SPIKE_ALLOWED_SHARE,
    SPIKE_CODES,
    SPIKE_GROUP,
    GapPlan,
    PatientArea,
    Payee,
    PayerSpec,
    Product,
    Provider,
    ScaPlan,
    Visit,
    World,
    build_world,
    reference_files,
)

ZERO = Decimal(0)
CENT = Decimal("0.01")
ONE = Decimal(1)
DEFAULT_SEED = 7
DEFAULT_CLAIMS = 1500
DEFAULT_START = dt.date(2025, 10, 1)
DEFAULT_WEEKS = 9
MIN_CLAIMS = 200
RECURRENCE_THRESHOLD = 3
RECURRENCE_WINDOW_DAYS = 90
ORDINARY_CELL_CAP = RECURRENCE_THRESHOLD - 1
"""Claims per payer + specialty + county outside the planted cells: below the recurrence threshold."""
NETWORK_DENIAL_FILINGS = ("HM", "14", "16")
FACILITY_POS = frozenset({"21", "22", "23", "24"})
MANIFEST_VERSION = 1


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def x12_amount(value: Decimal) -> str:
    """X12 R-type money: no trailing zeros after the point, sign kept (``12.5``, ``-40``, ``0``)."""
    text = format(money(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# ------------------------------------------------------------------------------------------------
# Claims and adjudications


@dataclass
class Patient:
    payer_id: str
    product: Product
    member_id: str
    area: PatientArea
    first: str
    last: str


@dataclass
class ClaimLine:
    index: int
    code: str
    modifiers: tuple[str, ...]
    units: Decimal
    charge: Decimal
    date: dt.date
    control: str

    @property
    def code_key(self) -> str:
        return "-".join((self.code, *self.modifiers))


@dataclass
class Claim:
    pcn: str
    payee: Payee
    provider: Provider
    patient: Patient
    payer: PayerSpec
    product: Product
    pos: str
    lines: list[ClaimLine]
    submitted: dt.date
    received: dt.date
    emergency: bool
    authorization: str | None
    clp07: str
    week: int
    payment_date: dt.date
    tags: list[str] = field(default_factory=list)
    context: ClaimContext | None = None

    @property
    def charge(self) -> Decimal:
        return sum((line.charge for line in self.lines), ZERO)

    @property
    def service_date(self) -> dt.date:
        return min(line.date for line in self.lines)

    @property
    def claim_key(self) -> str:
        return f"{self.payer.payer_id}|{self.clp07}"

    @property
    def region(self) -> str:
        return self.patient.area.region


@dataclass
class LineResult:
    line: ClaimLine
    expected: Decimal | None
    allowed: Decimal
    paid: Decimal
    adjustments: list[tuple[str, str, Decimal]]
    """(group, CARC, amount) in CAS order."""
    b6: Decimal | None
    remarks: list[str]
    underpaid: bool = False

    @property
    def patient_responsibility(self) -> Decimal:
        return sum((amount for group, _, amount in self.adjustments if group == "PR"), ZERO)


@dataclass
class Remit:
    """One CLP loop to write: an adjudication of a claim by one payer on one payment date."""

    sequence: int
    claim: Claim
    payer: PayerSpec
    filing: str
    status: str
    clp07: str
    member_id: str
    payment_date: dt.date
    week: int
    lines: list[LineResult]
    kind: str
    """original, reversal, correction, secondary."""
    sign: int = 1

    @property
    def charge(self) -> Decimal:
        return self.sign * sum((result.line.charge for result in self.lines), ZERO)

    @property
    def paid(self) -> Decimal:
        return self.sign * sum((result.paid for result in self.lines), ZERO)

    @property
    def patient_responsibility(self) -> Decimal:
        return self.sign * sum((result.patient_responsibility for result in self.lines), ZERO)

    @property
    def allowed(self) -> Decimal:
        return sum((result.allowed for result in self.lines), ZERO)

    @property
    def claim_key(self) -> str:
        return f"{self.payer.payer_id}|{self.clp07}"


@dataclass
class RemittanceFile:
    name: str
    payer_id: str
    week: int
    text: str
    transactions: int
    claims: int


@dataclass
class WeekBatch:
    week: int
    week_start: dt.date
    files: list[RemittanceFile]
    contexts: list[ClaimContext]


# ------------------------------------------------------------------------------------------------
# The simulation


@dataclass(frozen=True)
class Plan:
    """How many claims of each planted pattern, for a total of ``claims`` claims."""

    claims: int
    spike: int
    chronic: int
    reversals: int
    secondaries: int

    @classmethod
    def for_claims(cls, claims: int) -> Plan:
        if claims < MIN_CLAIMS:
            raise ValueError(f"at least {MIN_CLAIMS} claims are needed to plant every pattern (got {claims})")
        return cls(
            claims=claims,
            spike=max(10, round(claims * 0.04)),
            chronic=max(1, round(claims * 0.003)),
            reversals=max(4, 2 * round(claims / 300)),
            secondaries=max(4, round(claims / 100)),
        )


class Simulation:
    def __init__(
        self,
        world: World | None = None,
        *,
        seed: int = DEFAULT_SEED,
        claims: int = DEFAULT_CLAIMS,
        start: dt.date = DEFAULT_START,
        weeks: int = DEFAULT_WEEKS,
        hmac_key: bytes | str = DEMO_HMAC_KEY,
        reference: PricingReference | None = None,
    ):
        if weeks < 4 or weeks > 12:
            raise ValueError("weeks must be between 4 and 12 (the planted recurrences need a 90-day span)")
        self.world = world or build_world(seed)
        self.seed = self.world.seed
        self.plan = Plan.for_claims(claims)
        self.start = start
        self.weeks_count = weeks
        self.hmac_key = hmac_key.encode() if isinstance(hmac_key, str) else hmac_key
        self.reference_files = reference_files(self.world)
        self.reference = reference or load_pricing_reference(self.reference_files)
        self.rng = random.Random(f"claimwatch-simulate-claims-{self.seed}-{claims}-{start.isoformat()}-{weeks}")
        first_payment = start + dt.timedelta(days=21)
        self.first_week_start = first_payment + dt.timedelta(days=(7 - first_payment.weekday()) % 7)
        self._pcn = 0
        self._sequence = 0
        self._clp07: Counter[str] = Counter()
        self._members: Counter[str] = Counter()
        self._patients: dict[tuple[str, str, str], list[Patient]] = defaultdict(list)
        self._cells: Counter[tuple[str, str, str]] = Counter()
        self._planted_cells = {(gap.payer_id, gap.specialty, gap.area.county_fips) for gap in GAPS}
        # the gap-county controls are drawn outside the cap: keep room for them in their cells
        self._reserved: Counter[tuple[str, str, str]] = Counter(
            (GAP_CONTROL_PAYER, gap.specialty, gap.area.county_fips) for gap in GAPS
        )
        self._buckets: dict[int, list[Remit]] = defaultdict(list)
        self._schedule: dict[int, list[tuple[str, object]]] = defaultdict(list)
        self._claims: list[Claim] = []
        self._remits: list[Remit] = []
        self._files: list[RemittanceFile] = []
        self._patterns: dict[str, list[dict]] = defaultdict(list)
        self._overflow_cells: set[tuple[str, str, str]] = set()
        self._expected_above_charge = 0
        self._control_number = 0
        self._done = False
        self._plan_schedule()

    # -- planning ------------------------------------------------------------------------------------

    def week_start(self, week: int) -> dt.date:
        return self.first_week_start + dt.timedelta(days=7 * week)

    def _plan_schedule(self) -> None:
        """Decide which claim of which pattern is first paid in which week."""
        weeks = self.weeks_count
        rng = self.rng
        planted: list[tuple[int, str, object]] = []
        for gap_index, gap in enumerate(GAPS):
            for number in range(gap.claims):
                week = (1 + gap_index + number * max(1, (weeks - 2) // gap.claims)) % (weeks - 1)
                planted.append((week, "gap", (gap, number)))
            planted.append(((gap_index * 2 + 3) % (weeks - 1), "gap_control", gap))
        for index, plan in enumerate(SCAS):
            planted.append(((index * 2 + 1) % (weeks - 1), "sca", plan))
        for index in range(self.plan.chronic):
            planted.append((index * (weeks - 1) // self.plan.chronic, "chronic", index))
        for index in range(self.plan.reversals):
            planted.append((index % (weeks - 2), "reversal", index))
        for index in range(self.plan.secondaries):
            planted.append((index % (weeks - 2), "secondary", index))
        for index, spec in enumerate(_NETWORK_DENIAL_CONTROLS):
            planted.append(((index * 2 + 2) % (weeks - 1), "denial_control", spec))
        for index in range(self.plan.spike):
            planted.append((weeks - 1, "spike", index))
        ordinary = self.plan.claims - len(planted)
        if ordinary < self.plan.claims // 2:
            raise ValueError("too few claims for the planted patterns")
        for index in range(ordinary):
            planted.append((index % weeks, "ordinary", index))
        for week, kind, item in planted:
            self._schedule[week].append((kind, item))
        for week in self._schedule:
            rng.shuffle(self._schedule[week])

    # -- iteration -----------------------------------------------------------------------------------

    def weeks(self) -> Iterator[WeekBatch]:
        """Generate week by week; each batch holds that week's 835 files and first-time claim contexts."""
        if self._done:
            raise RuntimeError("a Simulation runs once")
        for week in range(self.weeks_count):
            contexts: list[ClaimContext] = []
            for kind, item in self._schedule.get(week, []):
                claim = self._draw(kind, item, week)
                self._claims.append(claim)
                assert claim.context is not None
                contexts.append(claim.context)
            remits = sorted(self._buckets.pop(week, []), key=lambda remit: remit.sequence)
            files = self._render_week(week, remits)
            self._files.extend(files)
            yield WeekBatch(week, self.week_start(week), files, contexts)
        if self._buckets:
            raise AssertionError(f"remittances scheduled after the last week: {sorted(self._buckets)}")
        self._done = True

    # -- drawing one claim ---------------------------------------------------------------------------

    def _draw(self, kind: str, item: object, week: int) -> Claim:
        handler = getattr(self, f"_draw_{kind}")
        return handler(item, week)

    def _payment_date(self, week: int) -> dt.date:
        return self.week_start(week) + dt.timedelta(days=self.rng.choice((1, 4)))  # Tuesday or Friday runs

    def _new_pcn(self, state: str) -> str:
        self._pcn += 1
        return f"{state}{self._pcn:07d}"

    def _new_clp07(self, payer: PayerSpec, year: int) -> str:
        self._clp07[payer.payer_id] += 1
        return f"{payer.payer_id}{year % 100:02d}{self._clp07[payer.payer_id]:07d}"

    def _patient(self, payer: PayerSpec, product: Product, area: PatientArea, reuse: float = 0.35) -> Patient:
        pool = self._patients[(payer.payer_id, product.name, area.zip)]
        if pool and self.rng.random() < reuse:
            return self.rng.choice(pool)
        self._members[payer.payer_id] += 1
        member = f"{payer.payer_id[:3]}{self.rng.randrange(10**6):06d}{self._members[payer.payer_id]:05d}"
        patient = Patient(
            payer.payer_id, product, member, area, self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        )
        pool.append(patient)
        return patient

    def _providers(self, location_zip: str | None = None, specialty: str | None = None) -> list[Provider]:
        return [
            provider
            for provider in self.world.providers
            if (location_zip is None or provider.location_zip == location_zip)
            and (specialty is None or provider.specialty == specialty)
        ]

    def _product(self, payer: PayerSpec, name: str | None = None) -> Product:
        if name is not None:
            return next(product for product in payer.products if product.name == name)
        return self.rng.choices(payer.products, weights=[product.weight for product in payer.products])[0]

    def _payer_for_state(self, state: str, exclude: tuple[str, ...] = ()) -> PayerSpec:
        candidates = [payer for payer in PAYERS if state in payer.states and payer.payer_id not in exclude]
        return self.rng.choices(candidates, weights=[payer.weight for payer in candidates])[0]

    def _area(self, payer_ids: list[str], specialty: str, location_zip: str) -> PatientArea | None:
        """A patient area of the location's catchment whose cells stay below the recurrence threshold."""
        areas = CATCHMENTS[location_zip]
        open_areas = [
            area
            for area in areas
            if all(
                (payer_id, specialty, area.county_fips) not in self._planted_cells
                and self._cells[(payer_id, specialty, area.county_fips)]
                + self._reserved[(payer_id, specialty, area.county_fips)]
                < ORDINARY_CELL_CAP
                for payer_id in payer_ids
            )
        ]
        if not open_areas:
            return None
        weights = [3 if area.county_type == "large_metro" else 1 for area in open_areas]
        return self.rng.choices(open_areas, weights=weights)[0]

    def _overflow_area(self, payer_id: str, specialty: str, location_zip: str) -> PatientArea:
        """Every cell of the catchment is full (a very large --claims): take the least used one."""
        areas = [
            area
            for area in CATCHMENTS[location_zip]
            if (payer_id, specialty, area.county_fips) not in self._planted_cells
        ]
        area = min(areas, key=lambda area: (self._cells[(payer_id, specialty, area.county_fips)], area.zip))
        self._overflow_cells.add((payer_id, specialty, area.county_fips))
        return area

    def _visit(self, specialty: str, predicate=None) -> Visit:
        visits = [visit for visit in SPECIALTIES[specialty].visits if predicate is None or predicate(visit)]
        return self.rng.choices(visits, weights=[visit.weight for visit in visits])[0]

    def _service_date(self, payment_date: dt.date, lag: tuple[int, int], emergency: bool) -> dt.date:
        day = payment_date - dt.timedelta(days=self.rng.randint(*lag))
        if day < self.start:
            day = self.start + dt.timedelta(days=self.rng.randint(0, 6))
        if not emergency:
            while day.weekday() >= 5:
                day += dt.timedelta(days=1)
        latest = payment_date - dt.timedelta(days=7)
        return min(day, latest)

    def _build_claim(
        self,
        *,
        provider: Provider,
        payer: PayerSpec,
        product: Product,
        area: PatientArea,
        visit: Visit,
        week: int,
        tags: list[str],
        authorization: str | None = None,
        clp07: str | None = None,
        lag: tuple[int, int] = (14, 28),
        patient: Patient | None = None,
    ) -> Claim:
        payee = self.world.payees[provider.state]
        payment_date = self._payment_date(week)
        emergency = visit.pos == "23"
        service = self._service_date(payment_date, lag, emergency)
        pcn = self._new_pcn(provider.state)
        lines = []
        for index, code_key in enumerate(visit.codes):
            code, *modifiers = code_key.split("-")
            lines.append(
                ClaimLine(
                    index=index,
                    code=code,
                    modifiers=tuple(modifiers),
                    units=ONE,
                    charge=self.world.charge(provider.state, code_key),
                    date=service,
                    control=f"{pcn}{index + 1:02d}",
                )
            )
        submitted = service + dt.timedelta(days=self.rng.randint(1, 3))
        claim = Claim(
            pcn=pcn,
            payee=payee,
            provider=provider,
            patient=patient or self._patient(payer, product, area),
            payer=payer,
            product=product,
            pos=visit.pos,
            lines=lines,
            submitted=submitted,
            received=submitted + dt.timedelta(days=self.rng.randint(1, 3)),
            emergency=emergency,
            authorization=authorization,
            clp07=clp07 or self._new_clp07(payer, service.year),
            week=week,
            payment_date=payment_date,
            tags=tags,
        )
        claim.context = self._context(claim)
        self._cells[(payer.payer_id, provider.specialty, area.county_fips)] += 1
        return claim

    def _context(self, claim: Claim, *, authorization: bool = True) -> ClaimContext:
        location = LOCATION_BY_ZIP[claim.provider.location_zip]
        return ClaimContext(
            payee_id=claim.payee.npi,
            patient_control_number=claim.pcn,
            payer_id=claim.payer.payer_id,
            place_of_service_code=claim.pos,
            place_of_service_zip=location.zip,
            state=location.state,
            rendering_npi=claim.provider.npi,
            taxonomy_code=claim.provider.taxonomy,
            specialty_group=claim.provider.specialty,
            patient_zip=claim.patient.area.zip,
            patient_key=patient_key(self.hmac_key, claim.payer.payer_id, claim.patient.member_id),
            authorization_number=claim.authorization if authorization else None,
            product_type=claim.product.name,
            emergency=claim.emergency,
            in_network_facility=True if claim.emergency else None,
            submitted_date=claim.submitted,
        )

    # -- pricing and adjudication ----------------------------------------------------------------------

    def _expected(
        self, claim: Claim, zero_lines: frozenset[int] = frozenset(), *, authorization: bool = True
    ) -> list[Decimal | None]:
        """The project's expected amount of each line (pricing engine, generated reference)."""
        lines = [
            ServiceLine(
                line_index=line.index,
                procedure_qualifier="HC",
                procedure_code=line.code,
                modifiers=list(line.modifiers),
                charge_amount=line.charge,
                paid_amount=ZERO if line.index in zero_lines else line.charge,
                units=line.units,
                service_date=line.date,
                derived_allowed_amount=ZERO if line.index in zero_lines else line.charge,
            )
            for line in claim.lines
        ]
        event = RemittanceEvent(
            event_id="draft",
            source=SourceLocation(file="draft", segment_index=1),
            payment=Payment(amount=ZERO, date=claim.payment_date),
            payer=PayerModel(id=claim.payer.payer_id, name=claim.payer.name),
            payee=PayeeModel(npi=claim.payee.npi),
            patient_control_number=claim.pcn,
            status_code="1",
            charge_amount=claim.charge,
            paid_amount=claim.charge,
            claim_filing_indicator=claim.product.filing,
            payer_claim_id=claim.clp07,
            facility_type_code=claim.pos,
            patient_key=claim.context.patient_key if claim.context else None,
            service_lines=lines,
        )
        context = claim.context if authorization else self._context(claim, authorization=False)
        prices = price_claim(event, context, self.reference)
        return [price.expected for price in prices.lines]

    def _patient_shares(self, claim: Claim, allowed: list[Decimal], *, deductible: bool | None = None):
        """PR adjustments per line (deductible PR-1, coinsurance PR-2, copay PR-3) by product."""
        rng = self.rng
        shares: list[list[tuple[str, Decimal]]] = [[] for _ in allowed]
        product = claim.product.name
        if product == "MA":
            for index, amount in enumerate(allowed):
                if amount > 0:
                    shares[index].append(("2", money(amount * Decimal("0.2"))))
            return shares
        if product in ("HMO", "EPO"):
            copay = Decimal(150) if claim.emergency else Decimal(40) if claim.pos == "11" else Decimal(100)
            first = next((index for index, amount in enumerate(allowed) if amount > 0), None)
            if first is not None:
                shares[first].append(("3", min(copay, allowed[first])))
            return shares
        rate = Decimal("0.3") if product == "INDEMNITY" else Decimal("0.2")
        use_deductible = rng.random() < (0.35 if product == "INDEMNITY" else 0.25) if deductible is None else deductible
        remaining = Decimal(rng.randrange(100, 601)) if use_deductible else ZERO
        for index, amount in enumerate(allowed):
            if amount <= 0:
                continue
            applied = min(remaining, amount)
            remaining -= applied
            if applied:
                shares[index].append(("1", applied))
            coinsurance = money((amount - applied) * rate)
            if coinsurance:
                shares[index].append(("2", coinsurance))
        return shares

    def _adjudicate(
        self,
        claim: Claim,
        *,
        expected: list[Decimal | None],
        allowed: list[Decimal] | None = None,
        denied: dict[int, str] | None = None,
        deductible: bool | None = None,
        payer: PayerSpec | None = None,
        remarks: list[list[str]] | None = None,
        underpaid: frozenset[int] = frozenset(),
    ) -> list[LineResult]:
        """Line results of a primary adjudication: allowed (default: expected), PR, CO-45, CO-253, AMT*B6."""
        payer = payer or claim.payer
        denied = denied or {}
        if allowed is None:
            allowed = []
            for line, amount in zip(claim.lines, expected, strict=True):
                if amount is None:
                    amount = money(line.charge * Decimal("0.45"))
                if amount > line.charge:
                    self._expected_above_charge += 1
                    amount = line.charge
                allowed.append(amount)
        allowed = [ZERO if index in denied else amount for index, amount in enumerate(allowed)]
        shares = self._patient_shares(claim, allowed, deductible=deductible)
        send_b6 = self.rng.random() < payer.b6_rate
        line_remarks = [list(codes) for codes in remarks] if remarks else [[] for _ in claim.lines]
        results: list[LineResult] = []
        for index, line in enumerate(claim.lines):
            adjustments: list[tuple[str, str, Decimal]] = []
            if index in denied:
                adjustments.append(("CO", denied[index], line.charge))
                results.append(LineResult(line, expected[index], ZERO, ZERO, adjustments, None, line_remarks[index]))
                continue
            amount = allowed[index]
            patient = sum((share for _, share in shares[index]), ZERO)
            sequestration = money((amount - patient) * Decimal("0.02")) if claim.product.name == "MA" else ZERO
            if line.charge > amount:
                adjustments.append(("CO", "45", line.charge - amount))
            if sequestration:
                adjustments.append(("CO", "253", sequestration))
            adjustments.extend(("PR", reason, share) for reason, share in shares[index])
            paid = amount - patient - sequestration
            results.append(
                LineResult(
                    line,
                    expected[index],
                    amount,
                    paid,
                    adjustments,
                    amount if send_b6 else None,
                    line_remarks[index],
                    underpaid=index in underpaid,
                )
            )
        return results

    def _remit(self, claim: Claim, results: list[LineResult], *, kind: str, week: int | None = None,
               status: str | None = None, payer: PayerSpec | None = None, clp07: str | None = None,
               member_id: str | None = None, filing: str | None = None, sign: int = 1,
               payment_date: dt.date | None = None) -> Remit:  # fmt: skip
        self._sequence += 1
        week = claim.week if week is None else week
        if status is None:
            paid = sum((result.paid for result in results), ZERO)
            allowed = sum((result.allowed for result in results), ZERO)
            status = "4" if paid == 0 and allowed == 0 else "1"
        remit = Remit(
            sequence=self._sequence,
            claim=claim,
            payer=payer or claim.payer,
            filing=filing or claim.product.filing,
            status=status,
            clp07=clp07 or claim.clp07,
            member_id=member_id or claim.patient.member_id,
            payment_date=payment_date or (claim.payment_date if week == claim.week else self._payment_date(week)),
            week=week,
            lines=results,
            kind=kind,
            sign=sign,
        )
        self._buckets[week].append(remit)
        self._remits.append(remit)
        return remit

    def _nsa_remarks(self, claim: Claim, denied: bool) -> list[list[str]] | None:
        if not claim.emergency or claim.product.name == "MA":
            return None
        notice = "N876" if denied else "N877"
        return [["N830", notice] if index == 0 else ["N830"] for index, _ in enumerate(claim.lines)]

    def _record_nsa(self, claim: Claim, remit: Remit) -> None:
        if not claim.emergency:
            return
        entry = {
            "claim_key": claim.claim_key,
            "patient_control_number": claim.pcn,
            "payer_id": claim.payer.payer_id,
            "state": claim.provider.state,
            "payment_date": remit.payment_date.isoformat(),
        }
        if claim.product.name == "MA":
            self._patterns["emergency_excluded_ma"].append(entry | {"why": "Medicare Advantage: outside the NSA"})
        else:
            entry["remark_codes"] = sorted({code for result in remit.lines for code in result.remarks})
            entry["denied"] = remit.status == "4"
            self._patterns["nsa_emergency"].append(entry)

    # -- pattern handlers ------------------------------------------------------------------------------

    def _ordinary_claim(self, week: int, tags: list[str], *, exclude_payers: tuple[str, ...] = (),
                        provider_filter=None, visit_filter=None, payer: PayerSpec | None = None,
                        product_name: str | None = None, lag: tuple[int, int] = (14, 28)) -> Claim:  # fmt: skip
        rng = self.rng
        providers = [p for p in self.world.providers if provider_filter is None or provider_filter(p)]
        provider = rng.choices(providers, weights=[SPECIALTIES[p.specialty].volume for p in providers])[0]
        chosen = payer or self._payer_for_state(provider.state, exclude_payers)
        # The payer mix stays as weighted; when the payer's cells of this practice are full, another practice
        # or specialty of the same state takes the claim (keeps every ordinary cell below the threshold).
        same_state = [p for p in providers if p.state == provider.state]
        same_weights = [SPECIALTIES[p.specialty].volume for p in same_state]
        area = self._area([chosen.payer_id], provider.specialty, provider.location_zip)
        for _attempt in range(40):
            if area is not None:
                break
            provider = rng.choices(same_state, weights=same_weights)[0]
            area = self._area([chosen.payer_id], provider.specialty, provider.location_zip)
        if area is None:
            area = self._overflow_area(chosen.payer_id, provider.specialty, provider.location_zip)
        product = self._product(chosen, product_name)
        visit = self._visit(provider.specialty, visit_filter)
        return self._build_claim(
            provider=provider, payer=chosen, product=product, area=area, visit=visit, week=week, tags=tags, lag=lag
        )

    def _draw_ordinary(self, _index: int, week: int) -> Claim:
        claim = self._ordinary_claim(week, ["ordinary"])
        rng = self.rng
        denied: dict[int, str] = {}
        remarks: list[list[str]] = [[] for _ in claim.lines]
        roll = rng.random()
        if roll < 0.015:
            denied = {line.index: "16" for line in claim.lines}  # claim lacks information
            remarks = [["MA130"] for _ in claim.lines]
            claim.tags.append("denied_missing_information")
        elif roll < 0.05 and len(claim.lines) > 1:
            denied = {claim.lines[-1].index: "97"}  # bundled into the other service
            claim.tags.append("line_bundled")
        nsa = self._nsa_remarks(claim, denied=len(denied) == len(claim.lines))
        if nsa is not None:
            remarks = [nsa_codes + codes for nsa_codes, codes in zip(nsa, remarks, strict=True)]
        expected = self._expected(claim, frozenset(denied))
        results = self._adjudicate(claim, expected=expected, denied=denied, remarks=remarks)
        remit = self._remit(claim, results, kind="original")
        self._record_nsa(claim, remit)
        return claim

    def _underpaid_allowed(self, claim, expected, codes, share_range, denied=None):
        allowed: list[Decimal] = []
        underpaid = set()
        for line, amount in zip(claim.lines, expected, strict=True):
            assert amount is not None, f"no expected amount for {line.code_key} of {claim.pcn}"
            amount = min(amount, line.charge)
            if line.code in codes and line.index not in (denied or {}):
                share = Decimal(self.rng.randint(int(share_range[0] * 100), int(share_range[1] * 100))) / 100
                amount = money(amount * share)
                underpaid.add(line.index)
            allowed.append(amount)
        return allowed, frozenset(underpaid)

    def _record_underpaid(self, pattern: str, claim: Claim, remit: Remit) -> None:
        lines = [result for result in remit.lines if result.underpaid]
        self._patterns[f"underpaid_{pattern}"].append(
            {
                "claim_key": claim.claim_key,
                "patient_control_number": claim.pcn,
                "payer_id": claim.payer.payer_id,
                "payer_group": claim.payer.group,
                "state": claim.provider.state,
                "payment_date": remit.payment_date.isoformat(),
                "codes": sorted({result.line.code for result in lines}),
                "expected": str(sum((result.expected or ZERO for result in lines), ZERO)),
                "allowed": str(sum((result.allowed for result in lines), ZERO)),
                "shortfall": str(sum(((result.expected or ZERO) - result.allowed for result in lines), ZERO)),
                "underpaid_lines": len(lines),
            }
        )

    def _draw_spike(self, _index: int, week: int) -> Claim:
        payers = [payer for payer in PAYERS if payer.group == SPIKE_GROUP]
        payer = self.rng.choices(payers, weights=[p.weight for p in payers])[0]
        spike_visit = self.rng.random() < 0.85

        def has_spike_code(visit: Visit) -> bool:
            return any(code.split("-")[0] in SPIKE_CODES for code in visit.codes)

        claim = self._ordinary_claim(
            week,
            ["spike_batch"],
            payer=payer,
            provider_filter=lambda p: (
                p.state in payer.states
                and (not spike_visit or any(has_spike_code(v) for v in SPECIALTIES[p.specialty].visits))
            ),
            visit_filter=has_spike_code if spike_visit else None,
            lag=(30, 55),
        )
        expected = self._expected(claim)
        remarks = self._nsa_remarks(claim, denied=False)
        allowed, underpaid = self._underpaid_allowed(claim, expected, SPIKE_CODES, SPIKE_ALLOWED_SHARE)
        results = self._adjudicate(claim, expected=expected, allowed=allowed, underpaid=underpaid, remarks=remarks)
        remit = self._remit(claim, results, kind="original")
        self._record_nsa(claim, remit)
        if underpaid:
            claim.tags.append("spike_underpaid")
            self._record_underpaid("spike", claim, remit)
        else:
            self._patterns["spike_batch_paid_as_expected"].append({"claim_key": claim.claim_key})
        return claim

    def _draw_chronic(self, _index: int, week: int) -> Claim:
        payer = PAYER_BY_ID[CHRONIC_PAYER]
        claim = self._ordinary_claim(
            week,
            ["chronic_underpayment"],
            payer=payer,
            provider_filter=lambda p: (
                p.state in payer.states
                and any(code in CHRONIC_CODES for v in SPECIALTIES[p.specialty].visits for code in v.codes)
            ),
            visit_filter=lambda visit: any(code in CHRONIC_CODES for code in visit.codes),
        )
        expected = self._expected(claim)
        allowed, underpaid = self._underpaid_allowed(claim, expected, CHRONIC_CODES, CHRONIC_ALLOWED_SHARE)
        results = self._adjudicate(claim, expected=expected, allowed=allowed, underpaid=underpaid)
        remit = self._remit(claim, results, kind="original")
        self._record_underpaid("chronic", claim, remit)
        return claim

    def _draw_gap(self, item: tuple[GapPlan, int], week: int) -> Claim:
        gap, number = item
        payer = PAYER_BY_ID[gap.payer_id]
        provider = self.rng.choice(self._providers(gap.area.location_zip, gap.specialty))
        claim = self._build_claim(
            provider=provider,
            payer=payer,
            product=self._product(payer, gap.product),
            area=gap.area,
            visit=self._visit(gap.specialty, lambda visit: visit.pos == "11"),
            week=week,
            tags=["network_gap", gap.gap_id],
        )
        carc = gap.denials[number] if number < len(gap.denials) else None
        denied = {line.index: carc for line in claim.lines} if carc else {}
        expected = self._expected(claim, frozenset(denied))
        remit = self._remit(claim, self._adjudicate(claim, expected=expected, denied=denied), kind="original")
        entry = {
            "claim_key": claim.claim_key,
            "patient_control_number": claim.pcn,
            "filing_indicator": remit.filing,
            "denial": f"CO-{carc}" if carc else None,
            "service_date": claim.service_date.isoformat(),
        }
        self._patterns[f"gap:{gap.gap_id}"].append(entry)
        if carc:
            self._patterns["network_denials_in_gap"].append(
                entry | {"gap_id": gap.gap_id, "payer_id": gap.payer_id, "region": gap.region}
            )
        return claim

    def _draw_gap_control(self, gap: GapPlan, week: int) -> Claim:
        payer = PAYER_BY_ID[GAP_CONTROL_PAYER]
        self._reserved[(payer.payer_id, gap.specialty, gap.area.county_fips)] -= 1
        provider = self.rng.choice(self._providers(gap.area.location_zip, gap.specialty))
        claim = self._build_claim(
            provider=provider,
            payer=payer,
            product=self._product(payer, "PPO"),
            area=gap.area,
            visit=self._visit(gap.specialty, lambda visit: visit.pos == "11"),
            week=week,
            tags=["gap_county_control"],
        )
        self._remit(claim, self._adjudicate(claim, expected=self._expected(claim)), kind="original")
        self._patterns["gap_county_controls"].append(
            {
                "claim_key": claim.claim_key,
                "gap_id": gap.gap_id,
                "payer_id": payer.payer_id,
                "specialty_group": gap.specialty,
                "region": gap.region,
                "why_no_gap": "this payer lists an in-network provider of the specialty in the county",
            }
        )
        return claim

    def _draw_denial_control(self, spec: tuple[str, str, str, str], week: int) -> Claim:
        payer_id, product_name, specialty, carc = spec
        payer = PAYER_BY_ID[payer_id]
        claim = self._ordinary_claim(
            week,
            ["network_denial_without_gap"],
            payer=payer,
            product_name=product_name,
            provider_filter=lambda p: p.specialty == specialty and p.state in payer.states,
            visit_filter=lambda visit: visit.pos == "11",
        )
        denied = {line.index: carc for line in claim.lines}
        expected = self._expected(claim, frozenset(denied))
        remit = self._remit(claim, self._adjudicate(claim, expected=expected, denied=denied), kind="original")
        self._patterns["network_denials_without_gap"].append(
            {
                "claim_key": claim.claim_key,
                "payer_id": payer_id,
                "filing_indicator": remit.filing,
                "denial": f"CO-{carc}",
                "specialty_group": specialty,
                "region": claim.region,
                "why_no_opportunity": "payer not in the directory"
                if not payer.in_directory
                else "not an HMO/EPO/MA claim"
                if remit.filing not in NETWORK_DENIAL_FILINGS
                else "the directory lists an in-network provider nearby (no gap)",
            }
        )
        return claim

    def _draw_sca(self, plan: ScaPlan, week: int) -> Claim:
        payer = PAYER_BY_ID[plan.payer_id]
        provider = self._providers(plan.location_zip, plan.specialty)[0]
        area = self._area([payer.payer_id], plan.specialty, plan.location_zip) or self._overflow_area(
            payer.payer_id, plan.specialty, plan.location_zip
        )
        visit = Visit(1, plan.pos, plan.codes)
        claim = self._build_claim(
            provider=provider,
            payer=payer,
            product=self._product(payer, plan.product),
            area=area,
            visit=visit,
            week=week,
            tags=["sca", plan.sca_id],
            authorization=plan.match_value if plan.match_on == "authorization_number" else None,
            clp07=plan.match_value if plan.match_on == "payer_claim_id" else None,
        )
        expected = self._expected(claim)
        if plan.honored:
            results = self._adjudicate(claim, expected=expected)
        else:
            oon = self._expected(claim, authorization=False)
            allowed = [min(amount or ZERO, line.charge) for amount, line in zip(oon, claim.lines, strict=True)]
            underpaid = frozenset(line.index for line in claim.lines)
            results = self._adjudicate(claim, expected=expected, allowed=allowed, underpaid=underpaid)
        remit = self._remit(claim, results, kind="original")
        self._patterns["sca"].append(
            {
                "claim_key": claim.claim_key,
                "sca_id": plan.sca_id,
                "payer_id": plan.payer_id,
                "match_on": plan.match_on,
                "honored": plan.honored,
                "expected": str(sum((result.expected or ZERO for result in results), ZERO)),
                "allowed": str(remit.allowed),
            }
        )
        if not plan.honored:
            self._record_underpaid("sca_not_honored", claim, remit)
        return claim

    def _draw_reversal(self, index: int, week: int) -> Claim:
        recovery = index % 2 == 0
        payer = PAYER_BY_ID[REVERSAL_PAYERS[index % len(REVERSAL_PAYERS)]]
        product = next(product for product in payer.products if product.name in ("PPO", "INDEMNITY"))
        claim = self._ordinary_claim(
            week,
            ["reversal_correction"],
            payer=payer,
            product_name=product.name,
            provider_filter=lambda p: p.specialty != "emergency_medicine" and p.state in payer.states,
        )
        expected = self._expected(claim)
        if recovery:
            allowed = [money(min(amount or ZERO, line.charge) * Decimal("0.72")) for amount, line in
                       zip(expected, claim.lines, strict=True)]  # fmt: skip
            original = self._adjudicate(
                claim, expected=expected, allowed=allowed, underpaid=frozenset(line.index for line in claim.lines)
            )
        else:
            original = self._adjudicate(claim, expected=expected, deductible=False)
        first = self._remit(claim, original, kind="original")
        later = week + 1 + self.rng.randint(0, 1)
        later = min(later, self.weeks_count - 1)
        reversal = self._remit(claim, original, kind="reversal", week=later, status="22", sign=-1)
        if recovery:
            corrected = self._adjudicate(claim, expected=expected)
        else:
            same = [result.allowed for result in original]
            corrected = self._adjudicate(claim, expected=expected, allowed=same, deductible=True)
        correction = self._remit(claim, corrected, kind="correction", week=later, payment_date=reversal.payment_date)
        self._patterns["reversals"].append(
            {
                "claim_key": claim.claim_key,
                "patient_control_number": claim.pcn,
                "payer_id": claim.payer.payer_id,
                "payer_claim_id": claim.clp07,
                "original_payment_date": first.payment_date.isoformat(),
                "reversal_payment_date": reversal.payment_date.isoformat(),
                "original_allowed": str(first.allowed),
                "corrected_allowed": str(correction.allowed),
                "original_paid": str(first.paid),
                "corrected_paid": str(correction.paid),
                "recovered": str(correction.allowed - first.allowed),
                "kind": "recovery" if recovery else "patient_share_change",
            }
        )
        return claim

    def _draw_secondary(self, index: int, week: int) -> Claim:
        rng = self.rng
        excluded = (*(p.payer_id for p in PAYERS if p.group == SPIKE_GROUP), *SECONDARY_PAYERS, "SILVR")
        providers = [p for p in self.world.providers if p.specialty != "emergency_medicine"]
        secondary = PAYER_BY_ID[SECONDARY_PAYERS[index % len(SECONDARY_PAYERS)]]
        for _attempt in range(60):
            provider = rng.choice(providers)
            primary = self._payer_for_state(provider.state, excluded)
            area = self._area([primary.payer_id, secondary.payer_id], provider.specialty, provider.location_zip)
            if area is not None and any(product.name == "PPO" for product in primary.products):
                break
        else:  # every cell is full (a very large --claims): the least used one
            primary = next(
                payer
                for payer in PAYERS
                if provider.state in payer.states
                and payer.payer_id not in excluded
                and any(product.name == "PPO" for product in payer.products)
            )
            area = self._overflow_area(primary.payer_id, provider.specialty, provider.location_zip)
            self._overflow_cells.add((secondary.payer_id, provider.specialty, area.county_fips))
        claim = self._build_claim(
            provider=provider,
            payer=primary,
            product=self._product(primary, "PPO"),
            area=area,
            visit=self._visit(provider.specialty),
            week=week,
            tags=["secondary_payer", "primary"],
        )
        self._cells[(secondary.payer_id, provider.specialty, area.county_fips)] += 1
        expected = self._expected(claim)
        primary_results = self._adjudicate(claim, expected=expected, deductible=False)
        self._remit(claim, primary_results, kind="original")
        later = min(week + 1 + rng.randint(0, 1), self.weeks_count - 1)
        secondary_product = self._product(secondary)
        member = self._patient(secondary, secondary_product, area, reuse=0.0).member_id
        results = []
        for result in primary_results:
            paid = sum(
                (amount for group, reason, amount in result.adjustments if group == "PR" and reason in ("1", "2")), ZERO
            )
            adjustments = [("OA", "23", result.line.charge - paid)] if result.line.charge > paid else []
            results.append(LineResult(result.line, None, paid, paid, adjustments, None, []))
        second = self._remit(
            claim,
            results,
            kind="secondary",
            week=later,
            status="2",
            payer=secondary,
            clp07=self._new_clp07(secondary, claim.service_date.year),
            member_id=member,
            filing=secondary_product.filing,
        )
        self._patterns["secondary"].append(
            {
                "claim_key": second.claim_key,
                "primary_claim_key": claim.claim_key,
                "patient_control_number": claim.pcn,
                "payer_id": secondary.payer_id,
                "primary_payer_id": primary.payer_id,
                "paid": str(second.paid),
                "payment_date": second.payment_date.isoformat(),
            }
        )
        return claim

    # -- 835 text -----------------------------------------------------------------------------------

    def _render_week(self, week: int, remits: list[Remit]) -> list[RemittanceFile]:
        by_payer: dict[str, list[Remit]] = defaultdict(list)
        for remit in remits:
            by_payer[remit.payer.payer_id].append(remit)
        files = []
        for payer_id in sorted(by_payer):
            files.append(self._render_file(week, PAYER_BY_ID[payer_id], by_payer[payer_id]))
        return files

    def _render_file(self, week: int, payer: PayerSpec, remits: list[Remit]) -> RemittanceFile:
        self._control_number += 1
        control = f"{100000000 + self._control_number:09d}"
        created = max(remit.payment_date for remit in remits) - dt.timedelta(days=1)
        groups: dict[tuple[dt.date, str], list[Remit]] = defaultdict(list)
        for remit in remits:
            groups[(remit.payment_date, remit.claim.payee.state)].append(remit)
        segments: list[list[str]] = [
            ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", payer.payer_id.ljust(15), "ZZ", RECEIVER_ID.ljust(15),
             created.strftime("%y%m%d"), "0815", "^", "00501", control, "0", "P", ":"],
            ["GS", "HP", payer.payer_id, RECEIVER_ID, created.strftime("%Y%m%d"), "0815", str(self._control_number),
             "X", "005010X221A1"],
        ]  # fmt: skip
        transactions = 0
        for (payment_date, state), group in sorted(groups.items()):
            transactions += 1
            segments.extend(self._transaction(transactions, payer, payment_date, self.world.payees[state], group))
        segments.append(["GE", str(transactions), str(self._control_number)])
        segments.append(["IEA", "1", control])
        text = "".join("*".join(segment) + "~\n" for segment in segments)
        name = f"{self.week_start(week).isoformat()}_{payer.payer_id}.835"
        return RemittanceFile(name, payer.payer_id, week, text, transactions, len(remits))

    def _transaction(
        self, number: int, payer: PayerSpec, payment_date: dt.date, payee: Payee, remits: list[Remit]
    ) -> list[list[str]]:
        day = payment_date.strftime("%Y%m%d")
        body: list[list[str]] = [["LX", "1"]]
        total = ZERO
        for remit in remits:
            body.extend(self._claim_segments(remit))
            total += remit.paid
        plb: list[list[str]] = []
        if self.rng.random() < 0.25:
            interest = -Decimal(self.rng.randrange(50, 2500)) * CENT
            reference = f"L6:{remits[0].claim.pcn}"
            plb.append(["PLB", payee.npi, f"{payment_date.year}1231", reference, x12_amount(interest)])
            total -= interest
        trace = f"{payer.payer_id[:2]}{payment_date.strftime('%y%m%d')}{number:03d}{self._control_number:05d}"
        if total > 0:
            bpr = ["BPR", "I", x12_amount(total), "C", "ACH", "CCP", "01", "011000015", "DA", "1234567890",
                   "1" + payer.ein, "", "01", "021000021", "DA", "9876543210", day]  # fmt: skip
        else:
            bpr = ["BPR", "H", x12_amount(abs(total)), "C" if total == 0 else "D", "NON", "", "", "", "", "", "", "",
                   "", "", "", "", day]  # fmt: skip
        header: list[list[str]] = [
            ["ST", "835", f"{number:04d}"],
            bpr,
            ["TRN", "1", trace, "1" + payer.ein],
            ["DTM", "405", day],
            ["N1", "PR", payer.name, "XV", payer.payer_id],
            ["N3", "100 PLAN PLAZA"],
            ["N4", payer.city, PAYER_STATE.get(payer.zip, "TX"), payer.zip],
            ["PER", "BL", "PROVIDER SERVICES", "TE", "8005550100"],
            ["N1", "PE", payee.name, "XX", payee.npi],
            ["N3", "200 MEDICAL CENTER DR"],
            ["N4", payee.city, payee.state, payee.zip],
            ["REF", "TJ", payee.tin],
        ]
        segments = header + body + plb
        segments.append(["SE", str(len(segments) + 1), f"{number:04d}"])
        return segments

    def _claim_segments(self, remit: Remit) -> list[list[str]]:
        claim = remit.claim
        sign = Decimal(remit.sign)
        patient = claim.patient
        provider = claim.provider
        segments: list[list[str]] = [
            ["CLP", claim.pcn, remit.status, x12_amount(remit.charge), x12_amount(remit.paid),
             x12_amount(remit.patient_responsibility), remit.filing, remit.clp07, claim.pos, "1"],
            ["NM1", "QC", "1", patient.last, patient.first, "", "", "", "MI", remit.member_id],
            ["NM1", "82", "1", provider.last, provider.first, "", "", "", "XX", provider.npi],
            ["DTM", "050", claim.received.strftime("%Y%m%d")],
        ]  # fmt: skip
        for result in remit.lines:
            line = result.line
            composite = ":".join(("HC", line.code, *line.modifiers))
            segments.append(
                ["SVC", composite, x12_amount(sign * line.charge), x12_amount(sign * result.paid), "",
                 format(line.units.normalize(), "f")]
            )  # fmt: skip
            segments.append(["DTM", "472", line.date.strftime("%Y%m%d")])
            by_group: dict[str, list[str]] = {}
            for group, reason, amount in result.adjustments:
                by_group.setdefault(group, []).extend([reason, x12_amount(sign * amount), ""])
            for group in ("CO", "OA", "PI", "PR"):
                if group in by_group:
                    triplets = by_group[group]
                    while triplets and triplets[-1] == "":
                        triplets.pop()
                    segments.append(["CAS", group, *triplets])
            segments.append(["REF", "6R", line.control])
            if result.b6 is not None:
                segments.append(["AMT", "B6", x12_amount(sign * result.b6)])
            for remark in result.remarks:
                segments.append(["LQ", "HE", remark])
        return segments

    # -- manifest ------------------------------------------------------------------------------------

    def manifest(self) -> dict:
        if not self._done:
            raise RuntimeError("run Simulation.weeks() to the end first")
        remits = self._remits
        statuses = Counter(remit.status for remit in remits)
        lines = [result for remit in remits for result in remit.lines]
        adjustments = Counter(f"{group}-{reason}" for result in lines for group, reason, _ in result.adjustments)
        by_group_underpaid: Counter[str] = Counter()
        by_group_claims: Counter[str] = Counter()
        for remit in remits:
            if remit.kind == "reversal":
                continue
            by_group_claims[remit.payer.group] += 1
            if any(result.underpaid for result in remit.lines):
                by_group_underpaid[remit.payer.group] += 1
        spike = self._patterns.get("underpaid_spike", [])
        spike_week = self.weeks_count - 1
        spike_week_claims = sum(1 for remit in remits if remit.payer.group == SPIKE_GROUP and remit.week == spike_week)
        recurrence = self._recurrence_cells()
        gaps = []
        expected_opportunities = []
        for gap in GAPS:
            claims = self._patterns.get(f"gap:{gap.gap_id}", [])
            rules = gap.expected_rules()
            gaps.append(
                {
                    "gap_id": gap.gap_id,
                    "kind": gap.kind,
                    "payer_id": gap.payer_id,
                    "payer_group": PAYER_BY_ID[gap.payer_id].group,
                    "product_type": gap.product,
                    "filing_indicator": gap.filing,
                    "specialty_group": gap.specialty,
                    "state": gap.area.state,
                    "county_fips": gap.area.county_fips,
                    "region": gap.region,
                    "county_type": gap.area.county_type,
                    "patient_zip": gap.area.zip,
                    "practice_zip": gap.area.location_zip,
                    "min_providers": gap.min_providers,
                    "how": "the payer's directory lists no in-network location of the specialty within the standard "
                    "distance of the county"
                    if gap.kind == "distance"
                    else f"the payer's directory lists 1 in-network provider of the specialty in the county; "
                    f"network/adequacy_standards.csv sets a minimum of {gap.min_providers}",
                    "claims": claims,
                    "expected_rules": rules,
                }
            )
            for rule in rules:
                if rule != "recurrence":
                    expected_opportunities.append(
                        {"rule": rule, "payer_id": gap.payer_id, "specialty_group": gap.specialty, "region": gap.region}
                    )
        for cell in recurrence:
            expected_opportunities.append(
                {
                    "rule": "recurrence",
                    "payer_id": cell["payer_id"],
                    "specialty_group": cell["specialty_group"],
                    "region": cell["region"],
                }
            )
        value = self._value_expectations()
        for item in value:
            if item["top_code_hit"]:
                expected_opportunities.append(
                    {"rule": "value", "payer_id": item["payer_id"], "specialty_group": "all", "region": item["state"]}
                )
        expected_opportunities.sort(key=lambda item: (item["rule"], item["payer_id"], item["specialty_group"],
                                                      item["region"]))  # fmt: skip
        patterns = {
            "underpayment": {
                "spike": {
                    "description": "payer group crestline allows ~60% of the expected amount on office visits "
                    f"({', '.join(SPIKE_CODES)}) on a backlog batch paid in the last remittance week only",
                    "payer_group": SPIKE_GROUP,
                    "payer_ids": sorted(p.payer_id for p in PAYERS if p.group == SPIKE_GROUP),
                    "codes": list(SPIKE_CODES),
                    "allowed_share_of_expected": [str(value) for value in SPIKE_ALLOWED_SHARE],
                    "week": spike_week,
                    "week_start": self.week_start(spike_week).isoformat(),
                    "batch_claims": self.plan.spike,
                    "group_claims_in_week": spike_week_claims,
                    "underpaid_claims": len(spike),
                    "underpaid_lines": sum(item["underpaid_lines"] for item in spike),
                    "shortfall": str(sum((Decimal(item["shortfall"]) for item in spike), ZERO)),
                    "group_claims_total": by_group_claims[SPIKE_GROUP],
                    "group_underpaid_share": _ratio(by_group_underpaid[SPIKE_GROUP], by_group_claims[SPIKE_GROUP]),
                    "claims": spike,
                    "alert": "UnderpaymentSpike (deploy/prometheus/rules/claimwatch.yml) for payer_group crestline "
                    "once the last week streams: >$500, >=3 underpaid claims, >30% of the group's claims",
                },
                "chronic": {
                    "description": f"{CHRONIC_PAYER} allows ~66% of the expected amount on {', '.join(CHRONIC_CODES)} "
                    "on a few claims spread over the weeks (a steady, low share of its claims: no spike)",
                    "payer_id": CHRONIC_PAYER,
                    "payer_group": PAYER_BY_ID[CHRONIC_PAYER].group,
                    "codes": list(CHRONIC_CODES),
                    "claims": self._patterns.get("underpaid_chronic", []),
                    "group_underpaid_share": _ratio(
                        by_group_underpaid[PAYER_BY_ID[CHRONIC_PAYER].group],
                        by_group_claims[PAYER_BY_ID[CHRONIC_PAYER].group],
                    ),
                },
                "sca_not_honored": self._patterns.get("underpaid_sca_not_honored", []),
                "recovery_originals": [
                    item["claim_key"] for item in self._patterns.get("reversals", []) if item["kind"] == "recovery"
                ],
                "underpaid_share_by_payer_group": {
                    group: _ratio(by_group_underpaid[group], by_group_claims[group])
                    for group in sorted(by_group_claims)
                },
                "note": "shares count every remittance claim except reversals; the recovery originals are underpaid "
                "until their correction arrives",
            },
            "reversals": {
                "count": len(self._patterns.get("reversals", [])),
                "recoveries": sum(1 for item in self._patterns.get("reversals", []) if item["kind"] == "recovery"),
                "recovered_total": str(
                    sum((Decimal(item["recovered"]) for item in self._patterns.get("reversals", [])), ZERO)
                ),
                "items": self._patterns.get("reversals", []),
            },
            "secondary": {
                "count": len(self._patterns.get("secondary", [])),
                "items": self._patterns.get("secondary", []),
            },
            "network_denials": {
                "in_gap_counties": self._patterns.get("network_denials_in_gap", []),
                "without_gap": self._patterns.get("network_denials_without_gap", []),
            },
            "nsa_emergency": {
                "count": len(self._patterns.get("nsa_emergency", [])),
                "how": "POS 23, claim context emergency=true and in_network_facility=true, LQ*HE N830 on every line "
                "and N877 (N876 when denied) on the first",
                "items": self._patterns.get("nsa_emergency", []),
                "excluded_medicare_advantage": self._patterns.get("emergency_excluded_ma", []),
            },
            "network_gaps": gaps,
            "gap_county_controls": self._patterns.get("gap_county_controls", []),
            "recurrence": {
                "threshold": RECURRENCE_THRESHOLD,
                "window_days": RECURRENCE_WINDOW_DAYS,
                "ordinary_cell_cap": ORDINARY_CELL_CAP,
                "cells": recurrence,
                "overflow_cells": [
                    {"payer_id": p, "specialty_group": s, "county_fips": c} for p, s, c in sorted(self._overflow_cells)
                ],
            },
            "value": value,
            "sca": self._patterns.get("sca", []),
        }
        return {
            "manifest_version": MANIFEST_VERSION,
            "generator": "claimwatch simulate",
            "seed": self.seed,
            "claims_requested": self.plan.claims,
            "start": self.start.isoformat(),
            "weeks": self.weeks_count,
            "first_payment_week": self.week_start(0).isoformat(),
            "last_payment_week": self.week_start(self.weeks_count - 1).isoformat(),
            "service_dates": [
                min(claim.service_date for claim in self._claims).isoformat(),
                max(claim.service_date for claim in self._claims).isoformat(),
            ],
            "hmac_key": "patient_key in claims.jsonl uses CLAIMWATCH_HMAC_KEY (the demo key unless set); "
            "the parser must use the same key",
            "group": {
                "name": "Cobalt Ridge Specialty Partners (fictional)",
                "payees": [
                    {"state": payee.state, "npi": payee.npi, "tin": payee.tin} for payee in self.world.payees.values()
                ],
                "rendering_providers": len(self.world.providers),
                "specialty_groups": sorted({provider.specialty for provider in self.world.providers}),
                "states": sorted({provider.state for provider in self.world.providers}),
            },
            "payers": [
                {
                    "payer_id": payer.payer_id,
                    "payer_group": payer.group,
                    "states": list(payer.states),
                    "products": [f"{product.name} (CLP06 {product.filing})" for product in payer.products],
                    "oon_benchmark": payer.benchmark,
                    "sends_amt_b6": payer.b6_rate,
                    "in_directory": payer.in_directory,
                }
                for payer in PAYERS
            ],
            "counts": {
                "claims": len(self._claims),
                "remittance_claims": len(remits),
                "by_status": dict(sorted(statuses.items())),
                "by_kind": dict(sorted(Counter(remit.kind for remit in remits).items())),
                "by_payer": dict(sorted(Counter(remit.payer.payer_id for remit in remits).items())),
                "by_state": dict(sorted(Counter(claim.provider.state for claim in self._claims).items())),
                "by_specialty": dict(sorted(Counter(claim.provider.specialty for claim in self._claims).items())),
                "service_lines": len(lines),
                "lines_with_amt_b6": sum(1 for result in lines if result.b6 is not None),
                "lines_without_amt_b6": sum(1 for result in lines if result.b6 is None),
                "adjustments": dict(sorted(adjustments.items())),
                "files": len(self._files),
                "transactions": sum(item.transactions for item in self._files),
                "expected_above_charge": self._expected_above_charge,
                "ordinary_claims": sum(1 for claim in self._claims if "ordinary" in claim.tags),
            },
            "files": [
                {
                    "name": item.name,
                    "payer_id": item.payer_id,
                    "week": item.week,
                    "transactions": item.transactions,
                    "claims": item.claims,
                }
                for item in self._files
            ],
            "patterns": patterns,
            "expected_opportunities": expected_opportunities,
        }

    def _recurrence_cells(self) -> list[dict]:
        """Every payer + specialty + county with >= 3 distinct claims within 90 days (what the rule must find)."""
        cells: dict[tuple[str, str, str], dict[str, dt.date]] = defaultdict(dict)
        for remit in self._remits:
            if remit.status == "22" or remit.filing in ("MA", "MB"):
                continue
            claim = remit.claim
            cells[(remit.payer.payer_id, claim.provider.specialty, claim.region)][remit.claim_key] = claim.service_date
        planted = {(gap.payer_id, gap.specialty, gap.region): gap.gap_id for gap in GAPS}
        found = []
        for (payer_id, specialty, region), claims in sorted(cells.items()):
            dates = sorted(claims.values())
            best = 0
            for index, day in enumerate(dates):
                end = day + dt.timedelta(days=RECURRENCE_WINDOW_DAYS - 1)
                best = max(best, bisect.bisect_right(dates, end) - index)
            if best >= RECURRENCE_THRESHOLD:
                found.append(
                    {
                        "payer_id": payer_id,
                        "specialty_group": specialty,
                        "region": region,
                        "claims": best,
                        "claim_keys": sorted(claims),
                        "planted": (payer_id, specialty, region) in planted,
                        "gap_id": planted.get((payer_id, specialty, region)),
                    }
                )
        return found

    def _value_expectations(self) -> list[dict]:
        """Payers (per state and quarter) with >= 3 underpaid lines on a code, and whether it is a top-10 code."""
        latest: dict[tuple[str, int], tuple[Remit, LineResult]] = {}
        for remit in self._remits:
            for result in remit.lines:
                key = (remit.claim_key, result.line.index)
                if remit.status == "22":
                    latest.pop(key, None)
                else:
                    latest.pop(key, None)
                    latest[key] = (remit, result)
        volume: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
        underpaid: dict[tuple[tuple[int, int], str, str], Counter[str]] = defaultdict(Counter)
        for remit, result in latest.values():
            day = result.line.date
            period = (day.year, (day.month - 1) // 3 + 1)
            volume[period][result.line.code] += 1
            if result.underpaid:
                underpaid[(period, remit.payer.payer_id, remit.claim.provider.state)][result.line.code] += 1
        found = []
        for (period, payer_id, state), codes in sorted(underpaid.items()):
            hits = {code: count for code, count in sorted(codes.items()) if count >= 3}
            if not hits:
                continue
            ranked = sorted(volume[period].items(), key=lambda item: (-item[1], item[0]))
            top = [code for code, _ in ranked[:10]]
            tenth = ranked[9][1] if len(ranked) >= 10 else 0
            eleventh = ranked[10][1] if len(ranked) >= 11 else -1
            found.append(
                {
                    "payer_id": payer_id,
                    "state": state,
                    "quarter": f"{period[0]}-Q{period[1]}",
                    "underpaid_lines_by_code": hits,
                    "top_codes": top,
                    "top_code_hit": any(code in top for code in hits),
                    "boundary_tie": tenth == eleventh and any(volume[period][code] == tenth for code in hits),
                }
            )
        return found


def _ratio(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 3) if denominator else 0.0


PAYER_STATE = {
    "60601": "IL", "43215": "OH", "06103": "CT", "75039": "TX", "68102": "NE", "40202": "KY", "33602": "FL",
    "78701": "TX", "30303": "GA", "85004": "AZ", "80202": "CO", "27701": "NC",
}  # fmt: skip

REVERSAL_PAYERS = ("ACME1", "LSTAR", "SUNCO", "BLUEP", "ROCKY", "PIEDM", "DESRT", "HRTLD")
"""Payers that reverse and correct claims (not the spike group, not the chronic underpayer)."""

# Network denials where no opportunity must follow: (payer, product, specialty, CARC).
_NETWORK_DENIAL_CONTROLS: tuple[tuple[str, str, str, str], ...] = (
    ("LSTAR", "EPO", "cardiology", "242"),  # in the directory, with in-network cardiologists nearby
    ("ROCKY", "HMO", "dermatology", "279"),  # idem
    ("ACME1", "PPO", "orthopedic_surgery", "279"),  # a PPO claim: no gap exception question
    ("BLUEP", "EPO", "gastroenterology", "242"),  # payer not in the directory: nothing concluded
)


# ------------------------------------------------------------------------------------------------
# Writing a folder


@dataclass
class SimulationResult:
    out_dir: Path
    manifest: dict
    files: list[Path]


def write_simulation(
    out_dir: Path | str,
    *,
    seed: int = DEFAULT_SEED,
    claims: int = DEFAULT_CLAIMS,
    start: dt.date = DEFAULT_START,
    weeks: int = DEFAULT_WEEKS,
    hmac_key: bytes | str = DEMO_HMAC_KEY,
) -> SimulationResult:
    """Write DIR/reference/, DIR/claims.jsonl, DIR/remittances/*.835 and DIR/manifest.json."""
    out = Path(out_dir)
    simulation = Simulation(seed=seed, claims=claims, start=start, weeks=weeks, hmac_key=hmac_key)
    written: list[Path] = []
    reference_dir = out / "reference"
    for relative, content in simulation.reference_files.items():
        path = reference_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    remittance_dir = out / "remittances"
    remittance_dir.mkdir(parents=True, exist_ok=True)
    for stale in remittance_dir.glob("*.835"):
        stale.unlink()
    claims_path = out / "claims.jsonl"
    with open(claims_path, "w", encoding="utf-8", newline="\n") as handle:
        for batch in simulation.weeks():
            for context in batch.contexts:
                handle.write(context.model_dump_json(exclude_none=True) + "\n")
            for item in batch.files:
                path = remittance_dir / item.name
                path.write_text(item.text, encoding="ascii", newline="")
                written.append(path)
    written.append(claims_path)
    manifest = simulation.manifest()
    manifest_path = out / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    written.append(manifest_path)
    return SimulationResult(out, manifest, written)


def verify_output(out_dir: Path | str, hmac_key: bytes | str = DEMO_HMAC_KEY) -> dict:
    """Check a written folder with the project's own code: ``reference check`` and the 835 parser.

    Returns {"reference_problems": [...], "reference_summary": [...], "parser": {...} or None when the parser
    module is not available}. A correct simulation has no problem, no dead letter and no balance issue.
    """
    from services.reference.checks import check_reference
    from services.reference.files import read_folder

    out = Path(out_dir)
    key = hmac_key.encode() if isinstance(hmac_key, str) else hmac_key
    summary, problems = check_reference(read_folder(out / "reference"))
    result: dict = {"reference_summary": summary, "reference_problems": [str(problem) for problem in problems]}
    try:
        from services.ingestion.x12 import parse_path
    except ImportError:  # the parser is another module of the project; report instead of failing
        result["parser"] = None
        return result
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for path in sorted((out / "remittances").glob("*.835")):
        run = parse_path(path, key)
        for item in run:
            counts[type(item).__name__] += 1
            if isinstance(item, RemittanceEvent):
                counts["balance_issues"] += len(item.balance_issues)
            elif not hasattr(item, "service_lines") and getattr(item, "reason", None):
                reasons[item.reason] += 1
        counts["files"] += 1
        counts["unbalanced_transactions"] += run.summary.unbalanced_transactions
        counts["warnings"] += len(run.summary.warnings)
        counts["unaccounted_files"] += not run.summary.accounted
    result["parser"] = {
        "files": counts["files"],
        "remittance_events": counts["RemittanceEvent"],
        "provider_adjustments": counts["ProviderAdjustmentEvent"],
        "dead_letters": counts["DeadLetter"],
        "dead_letter_reasons": dict(reasons),
        "balance_issues": counts["balance_issues"],
        "unbalanced_transactions": counts["unbalanced_transactions"],
        "warnings": counts["warnings"],
        "unaccounted_files": counts["unaccounted_files"],
    }
    return result
