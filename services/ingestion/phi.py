"""Pseudonymisation of member ids: ``patient_key`` = HMAC-SHA256(key, payer id + member id), hex.

Names are never read by the parser; the member id (NM1*QC09, or NM1*IL09 when the patient has none) only
passes through here. Both parts are normalised before hashing (surrounding whitespace removed, upper
case) so that ``" ypb123 "`` and ``"YPB123"`` from the same payer give the same key, and they are joined
with ``|`` so that ("AB", "C1") and ("A", "BC1") cannot collide. Any other producer of ``patient_key``
(e.g. the claims side) must use :func:`patient_key` so that keys meet.
"""

from __future__ import annotations

import hashlib
import hmac

_CACHE_LIMIT = 65_536


def _message(payer_id: str | None, member_id: str) -> bytes:
    return f"{(payer_id or '').strip().upper()}|{member_id.strip().upper()}".encode()


def patient_key(hmac_key: bytes, payer_id: str | None, member_id: str) -> str:
    """HMAC-SHA256 (hex, 64 chars) of ``PAYERID|MEMBERID`` with ``hmac_key``."""
    if isinstance(hmac_key, str):
        hmac_key = hmac_key.encode()
    return hmac.new(hmac_key, _message(payer_id, member_id), hashlib.sha256).hexdigest()


class PatientKeyer:
    """:func:`patient_key` with a fixed key, for the parser's hot path.

    The keyed inner and outer SHA-256 states are computed once (RFC 2104) and copied per call, and results
    are kept in a bounded cache (a patient usually has several claims in a file). The cache lives in the
    parser's memory only, for the parser's lifetime.
    """

    __slots__ = ("_cache", "_inner", "_outer")

    def __init__(self, hmac_key: bytes):
        if isinstance(hmac_key, str):
            hmac_key = hmac_key.encode()
        if len(hmac_key) > 64:
            hmac_key = hashlib.sha256(hmac_key).digest()
        padded = hmac_key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in padded))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in padded))
        self._cache: dict[tuple[str | None, str], str] = {}

    def __call__(self, payer_id: str | None, member_id: str) -> str:
        cache_key = (payer_id, member_id)
        result = self._cache.get(cache_key)
        if result is None:
            inner = self._inner.copy()
            inner.update(_message(payer_id, member_id))
            outer = self._outer.copy()
            outer.update(inner.digest())
            result = outer.hexdigest()
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[cache_key] = result
        return result
