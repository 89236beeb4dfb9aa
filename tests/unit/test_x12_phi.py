"""patient_key: HMAC-SHA256 of payer id + member id, normalised; the fast keyer agrees with the reference."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.ingestion.phi import PatientKeyer, patient_key


def test_patient_key_is_the_documented_hmac():
    expected = hmac.new(b"k", b"PAYER1|W123", hashlib.sha256).hexdigest()
    assert patient_key(b"k", "PAYER1", "W123") == expected
    assert len(expected) == 64


def test_normalisation_and_separation():
    assert patient_key(b"k", " payer1 ", " w123 ") == patient_key(b"k", "PAYER1", "W123")
    assert patient_key(b"k", "AB", "C1") != patient_key(b"k", "A", "BC1")
    assert patient_key(b"k", None, "W123") == patient_key(b"k", "", "W123")
    assert patient_key(b"k", "P", "W123") != patient_key(b"other", "P", "W123")


@pytest.mark.parametrize("key", [b"", b"short", b"x" * 64, b"y" * 65, b"z" * 200, "text-key"])
def test_fast_keyer_matches_reference(key):
    keyer = PatientKeyer(key)
    for payer, member in [("P", "M1"), (None, "M2"), ("P", " m1 "), ("P", "M1")]:
        assert keyer(payer, member) == patient_key(key, payer, member)
