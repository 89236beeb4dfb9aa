"""Pure underpayment evaluation: expected vs allowed, classification, and netting of a claim's events."""

from services.underpayment.evaluate import alert_id_for, apply_remittance, evaluate, evaluation_id_for

__all__ = ["alert_id_for", "apply_remittance", "evaluate", "evaluation_id_for"]
