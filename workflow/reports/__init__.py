"""Monthly complaint reports (月度投诉报告): figures aggregated in SQL, rendered as JSON, Excel and HTML.

    figures = await monthly_figures(session, Month.parse("2026-10"))
    rendered = render(figures, "xlsx")          # .body, .content_type, .filename
    await run_monthly(session, now)             # the scheduled job (previous month, once)

The jobs runner for the daemon is `workflow.reports.jobs.ReportJobs` (not imported here: it
depends on workflow.spikes, which depends on this package).
"""
from .figures import monthly_figures
from .monthly import (FORMATS, Rendered, keep_report, kept_report, notify_managers, render, render_async,
                      report_figures, run_monthly)
from .period import Month

__all__ = ["FORMATS", "Month", "Rendered", "keep_report", "kept_report", "monthly_figures", "notify_managers",
           "render", "render_async", "report_figures", "run_monthly"]
