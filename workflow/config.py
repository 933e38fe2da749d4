"""The workflow's tunables and the bundle of services its operations need."""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any, Mapping

from .calendar import WorkCalendar


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class WorkflowSettings:
    # progress messages while a complaint is open and nobody wrote to the customer for this long
    progress_hours: Mapping[str, float] = field(default_factory=lambda: {"P0": 8, "P1": 24, "P2": 24})
    survey_delay_minutes: float = 0            # after confirmation; always well within 3 working days
    survey_window_working_days: int = 3        # no answer by then: the complaint is closed without one
    callback_score: int = 3                    # any survey score <= this asks a supervisor to call back
    callback_working_days: int = 1             # due date of that call-back
    manager_approval_cents: int = 100_000      # plans costing more (1 000 yuan) need a manager too
    repeat_window_days: int = 30
    repeat_similarity: float = 0.5             # TF-IDF cosine against the customer's open complaints
    session_hours: float = 12                  # console session lifetime
    base_url: str = "http://127.0.0.1:8080"    # where customers reach survey links

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, **overrides: Any) -> "WorkflowSettings":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown workflow setting(s): {', '.join(sorted(unknown))}")
        values = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        if "progress_hours" in values:
            values["progress_hours"] = {**cls().progress_hours, **values["progress_hours"]}
        s = cls(**values)
        if not 0 < s.repeat_similarity <= 1:
            raise ConfigError("workflow.repeat_similarity must be in (0, 1]")
        if any(h <= 0 for h in s.progress_hours.values()):
            raise ConfigError("workflow.progress_hours must be positive")
        return s

    @classmethod
    def from_settings(cls, settings: Any) -> "WorkflowSettings":
        """From the daemon's settings: an optional `workflow` mapping plus its public base URL."""
        return cls.from_mapping(getattr(settings, "workflow", None), base_url=getattr(settings, "base_url", None))


def load_calendar(path: str | Path | None = None, *, holidays=(), workdays=()) -> WorkCalendar:
    """A working calendar with corrections for years the chinesecalendar package does not know yet.

    The file (TOML or JSON) holds `holidays = ["2027-01-01", ...]` and `workdays = [...]`
    (make-up working days on weekends)."""
    extra_h = {_day(d) for d in holidays}
    extra_w = {_day(d) for d in workdays}
    if path:
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        extra_h |= {_day(d) for d in data.get("holidays", ())}
        extra_w |= {_day(d) for d in data.get("workdays", ())}
    both = extra_h & extra_w
    if both:
        raise ConfigError(f"days listed both as holiday and working day: {sorted(both)}")
    return WorkCalendar(extra_holidays=extra_h, extra_workdays=extra_w)


def _day(value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"not a date (YYYY-MM-DD): {value!r}") from None


@dataclass
class WorkflowEnv:
    """What workflow operations need besides a session."""
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    settings: WorkflowSettings = field(default_factory=WorkflowSettings)


_current = WorkflowEnv()


def configure(env: WorkflowEnv) -> None:
    """Install the process-wide environment (the daemon does, once) for code paths that are not
    handed one, such as a survey answer recorded by a channel."""
    global _current
    _current = env


def current_env() -> WorkflowEnv:
    return _current
