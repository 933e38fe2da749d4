from __future__ import annotations

from intake.pipeline import Context


class Classify:
    """Take the classifier's suggestion (computed off the event loop for the whole batch)."""
    name = "classify"

    async def run(self, ctx: Context) -> None:
        s = ctx.suggestion
        if s is None:
            raise RuntimeError("no classifier suggestion for this item")
        ctx.note(self.name, f"{s.category}/{s.urgency}", category=s.category,
                 category_confidence=round(s.category_confidence, 3), urgency=s.urgency,
                 urgency_confidence=round(s.urgency_confidence, 3), needs_review=s.needs_review,
                 reasons=list(s.reasons), model=s.model_version)
