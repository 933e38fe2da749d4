from __future__ import annotations

from sqlalchemy import select

from intake.pipeline import Context
from models import RoutingRule
from workflow.organisation import FALLBACK_DEPARTMENT


class Route:
    """The department responsible for the suggested category (editable routing rules)."""
    name = "route"

    async def run(self, ctx: Context) -> None:
        category = ctx.suggestion.category
        code = await ctx.session.scalar(select(RoutingRule.department_code).where(RoutingRule.category == category))
        ctx.department = code or FALLBACK_DEPARTMENT
        ctx.note(self.name, ctx.department, rule=category if code else "fallback")
