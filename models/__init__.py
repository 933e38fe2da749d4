"""kesu's storage: SQLAlchemy 2 models, engine and session factory, encrypted columns."""
from .base import Base, UTCDateTime, utcnow
from .chat import ChatMessage, ChatSession
from .complaint import (Complaint, ComplaintMessage, DailySerial, LabelledExample, StoredAttachment,
                        SurveyResponse)
from .customer import Customer, CustomerIdentity
from .db import conflict_insert, is_sqlite, make_engine, make_sessionmaker, read_session, write_gate
from .organisation import ROLES, Agent, ApiToken, Department, RoutingRule
from .queues import AuditEvent, ChannelCursor, InboxItem, OutboxItem, Timer

__all__ = [
    "Base", "UTCDateTime", "utcnow", "Complaint", "ComplaintMessage", "DailySerial", "LabelledExample",
    "StoredAttachment", "SurveyResponse", "Customer", "CustomerIdentity", "conflict_insert", "is_sqlite", "make_engine", "make_sessionmaker", "read_session",
    "write_gate",
    "ROLES", "Agent", "ApiToken", "Department", "RoutingRule", "AuditEvent", "ChannelCursor", "InboxItem",
    "OutboxItem", "Timer",
    "ChatSession", "ChatMessage",
]
from .workflow import (ComplaintWorkflow, ConsoleSession, Escalation, Remedy, SolutionPlan,  # noqa: E402
                       WorkTask)

__all__ += ["ComplaintWorkflow", "ConsoleSession", "Escalation", "Remedy", "SolutionPlan", "WorkTask"]
from .reporting import MonthlyReport, SpikeAlert, StaffNotice  # noqa: E402

__all__ += ["MonthlyReport", "SpikeAlert", "StaffNotice"]
