"""KYC verification through a provider interface; the built-in simulated provider decides
deterministically from the submitted documents so that tests and demos are reproducible."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class KycDecision:
    approved: bool
    reference: str
    reason: str | None = None


class KycProvider(Protocol):
    name: str

    def verify(self, legal_name: str, tax_id: str, documents: dict[str, str]) -> KycDecision: ...


class SimulatedKycProvider:
    """Rejects tax ids that end in '0000' or lack an identity document; approves the rest."""

    name = "simulated"

    def verify(self, legal_name: str, tax_id: str, documents: dict[str, str]) -> KycDecision:
        reference = "kyc_" + hashlib.sha256(f"{legal_name}|{tax_id}".encode()).hexdigest()[:16]
        if "identity" not in documents:
            return KycDecision(False, reference, "an identity document is required")
        if tax_id.endswith("0000"):
            return KycDecision(False, reference, "tax id failed verification")
        return KycDecision(True, reference)


def get_kyc_provider() -> KycProvider:
    return SimulatedKycProvider()
