"""Pure pricing core: Medicare PFS amounts, reference loaders and the expected-amount engine.

Nothing here knows Kafka or Faust: the live agent and the offline CLI call the same functions.
"""

from services.pricing.engine import ClaimPrice, LinePrice, price_claim, price_line
from services.pricing.medicare import MedicareAmount, MedicareReference, is_facility, medicare_amount
from services.pricing.reference import PricingReference, load_pricing_folder, load_pricing_reference

__all__ = [
    "ClaimPrice",
    "LinePrice",
    "MedicareAmount",
    "MedicareReference",
    "PricingReference",
    "is_facility",
    "load_pricing_folder",
    "load_pricing_reference",
    "medicare_amount",
    "price_claim",
    "price_line",
]
