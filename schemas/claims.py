"""The claims topic: facts from the submitted claim (837 / practice-management system) that an 835 lacks.

A ClaimContext is keyed like the remittance it belongs to (payee + CLP01), so both land on the same
partition and the worker that prices a remittance also holds its context.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from schemas.common import Model
from schemas.remittance import partition_key

SCHEMA_VERSION = 1


class ClaimContext(Model):
    schema_version: int = SCHEMA_VERSION
    event_type: str = "claim_context"
    payee_id: str = Field(description="Billing provider NPI (or tax id): the payee of the 835.")
    patient_control_number: str = Field(description="CLM01 = CLP01 of the remittance.")
    payer_id: str | None = None
    place_of_service_code: str | None = Field(
        None, description="CMS place of service, e.g. 11 office, 22/19 outpatient, 23 ER."
    )
    place_of_service_zip: str | None = Field(
        None, description="ZIP of the service location (drives the Medicare locality)."
    )
    state: str | None = Field(None, description="Two-letter state of the service location.")
    rendering_npi: str | None = None
    taxonomy_code: str | None = Field(None, description="NUCC taxonomy of the rendering provider.")
    specialty_group: str | None = Field(None, description="Adequacy specialty group, e.g. cardiology.")
    patient_zip: str | None = Field(None, description="Patient's 5-digit ZIP (geography only; no address).")
    patient_key: str | None = Field(None, description="Same HMAC as the remittance, when known.")
    authorization_number: str | None = Field(None, description="Prior authorization / referral (REF*G1).")
    product_type: str | None = Field(None, description="Payer product: HMO, PPO, EPO, POS, MA, indemnity...")
    emergency: bool = Field(False, description="Emergency services (including post-stabilization).")
    in_network_facility: bool | None = Field(None, description="Service at an in-network facility.")
    notice_and_consent: bool | None = Field(None, description="Valid NSA notice and consent was obtained.")
    air_ambulance: bool = False
    state_law_applies: bool | None = Field(None, description="A specified state law / All-Payer Model sets the amount.")
    submitted_date: dt.date | None = None

    @property
    def partition_key(self) -> str:
        return partition_key(self.payee_id, self.patient_control_number)
