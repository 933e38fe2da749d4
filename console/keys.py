"""Typed keys for what the composition root puts on the aiohttp application."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker)
INTAKE = web.AppKey("intake", object)          # connectors.base.IntakePort
SETTINGS = web.AppKey("settings", object)      # intake.settings.Settings
CLASSIFIER = web.AppKey("classifier", object)  # classifier.Classifier
AGENT = web.RequestKey("agent", object)        # the authenticated models.Agent
CALENDAR = web.AppKey("calendar", object)      # workflow.calendar.WorkCalendar
WORKFLOW = web.AppKey("workflow", object)      # workflow.config.WorkflowEnv
CONSOLE_SESSION = web.RequestKey("console_session", object)   # models.ConsoleSession of a browser
