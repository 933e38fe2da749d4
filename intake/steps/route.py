from __future__ import annotations

from intake.pipeline import Context
from workflow.organisation import FALLBACK_DEPARTMENT


class Route:
    """The department responsible for the suggested category (editable routing rules)."""
    name = "route"

    async def run(self, ctx: Context) -> None:
        code = ctx.batch.routes.get(ctx.suggestion.category)
        ctx.department = code or FALLBACK_DEPARTMENT
        ctx.note(self.name, ctx.department, rule=ctx.suggestion.category if code else "fallback")
