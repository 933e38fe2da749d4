"""Departments and category routing: defaults seeded at migration, editable by admins."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Department, RoutingRule

DEFAULT_DEPARTMENTS = {
    "CS": "客服部",
    "QA": "质量部",
    "LG": "物流部",
    "FN": "财务部",
    "IT": "技术部",
}
DEFAULT_ROUTES = {
    "product_quality": "QA",
    "logistics": "LG",
    "service": "CS",
    "price_refund": "FN",
    "system_fault": "IT",
    "other": "CS",
    "non_complaint": "CS",
}
FALLBACK_DEPARTMENT = "CS"


async def ensure_defaults(session: AsyncSession) -> None:
    """Seed departments and routes where none exist; never overwrite an admin's edits."""
    have = set((await session.scalars(select(Department.code))).all())
    for code, name in DEFAULT_DEPARTMENTS.items():
        if code not in have:
            session.add(Department(code=code, name=name))
    await session.flush()
    routed = set((await session.scalars(select(RoutingRule.category))).all())
    for category, code in DEFAULT_ROUTES.items():
        if category not in routed:
            session.add(RoutingRule(category=category, department_code=code))
    await session.flush()
