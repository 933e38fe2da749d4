"""Test doubles for kesu's own dependencies (never for servers: those are real)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FixedSuggestion:
    category: str = "logistics"
    category_confidence: float = 0.9
    urgency: str = "P2"
    urgency_confidence: float = 0.8
    needs_review: bool = False
    reasons: tuple[str, ...] = ("快递",)
    model_version: str = "test"
    p0_watch: bool = False

    def to_dict(self) -> dict:
        return {**asdict(self), "reasons": list(self.reasons)}


class KeywordClassifier:
    """Suggests by a few keywords, so pipeline tests can steer category and urgency."""
    version = "test"

    def suggest(self, text: str) -> FixedSuggestion:
        if "受伤" in text or "中毒" in text:
            return FixedSuggestion(category="product_quality", urgency="P0")
        if "冒烟" in text:     # suggested P1 but in the P0 watch band
            return FixedSuggestion(urgency="P1", needs_review=True, p0_watch=True)
        if "退款" in text:
            return FixedSuggestion(category="price_refund", urgency="P1")
        if "态度" in text:
            return FixedSuggestion(category="service")
        return FixedSuggestion()

    def suggest_many(self, texts):
        return [self.suggest(t) for t in texts]
