"""The agents' web application: the JSON API, the console pages and the customers' survey page."""
from __future__ import annotations

from aiohttp import web

from workflow.config import WorkflowEnv, WorkflowSettings, configure

from . import api, pages, reports
from .auth import api_auth
from .keys import CALENDAR, CLASSIFIER, INTAKE, SESSIONMAKER, SETTINGS, WORKFLOW

MAX_BODY = 1024 * 1024


def build_app(*, sessionmaker, intake, settings, classifier, calendar, workflow: WorkflowEnv | None = None
              ) -> web.Application:
    app = web.Application(middlewares=[pages.security_headers, api.api_errors, api_auth], client_max_size=MAX_BODY)
    app[SESSIONMAKER] = sessionmaker
    app[INTAKE] = intake
    app[SETTINGS] = settings
    app[CLASSIFIER] = classifier
    app[CALENDAR] = calendar
    if workflow is None:
        workflow = WorkflowEnv(calendar=calendar, settings=WorkflowSettings.from_settings(settings))
        configure(workflow)
    app[WORKFLOW] = workflow
    app.add_routes(api.routes)
    app.add_routes(reports.routes)
    pages.setup(app)
    return app
