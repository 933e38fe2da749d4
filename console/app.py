"""The agents' web application: JSON API (and, later, the console pages)."""
from __future__ import annotations

from aiohttp import web

from . import api, reports
from .auth import api_auth
from .keys import CALENDAR, CLASSIFIER, INTAKE, SESSIONMAKER, SETTINGS

MAX_BODY = 1024 * 1024


def build_app(*, sessionmaker, intake, settings, classifier, calendar) -> web.Application:
    app = web.Application(middlewares=[api.api_errors, api_auth], client_max_size=MAX_BODY)
    app[SESSIONMAKER] = sessionmaker
    app[INTAKE] = intake
    app[SETTINGS] = settings
    app[CLASSIFIER] = classifier
    app[CALENDAR] = calendar
    app.add_routes(api.routes)
    app.add_routes(reports.routes)
    return app
