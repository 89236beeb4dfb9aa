"""``claimwatch audit``: the batch report over 835 files, on the same core as the live service.

``report`` is pure (claim evaluations in, an :class:`AuditReport` out); ``cli`` reads the files, renders
markdown or JSON.
"""

from services.audit.report import AuditClaim, AuditReport, build_report, net_claim

__all__ = ["AuditClaim", "AuditReport", "build_report", "net_claim"]
