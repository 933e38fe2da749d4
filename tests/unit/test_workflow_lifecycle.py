"""The state table: every allowed transition, every refused one, and who may take each."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from workflow.lifecycle import (ACTIONS, CUSTOMER, STATES, SYSTEM, Actor, Forbidden, Invalid, TransitionRefused,
                                available, check, target_of)

OPEN_FOR_MERGE = ("registered", "assigned", "in_progress", "awaiting_customer", "reopened")
# Declared here independently of the implementation, so a change to either shows up.
EXPECTED = {
    ("registered", "assign"): "assigned", ("assigned", "assign"): "assigned", ("reopened", "assign"): "assigned",
    ("in_progress", "assign"): "in_progress", ("awaiting_customer", "assign"): "awaiting_customer",
    ("assigned", "start"): "in_progress", ("reopened", "start"): "in_progress",
    ("assigned", "draft_plan"): "in_progress", ("reopened", "draft_plan"): "in_progress",
    ("in_progress", "draft_plan"): "in_progress", ("in_progress", "approve_plan"): "in_progress",
    ("in_progress", "reject_plan"): "in_progress",
    ("in_progress", "await_customer"): "awaiting_customer", ("awaiting_customer", "resume"): "in_progress",
    ("in_progress", "resolve"): "resolved",
    ("resolved", "confirm"): "confirmed", ("resolved", "dispute"): "disputed",
    ("disputed", "reopen"): "reopened",
    ("confirmed", "record_survey"): "surveyed", ("confirmed", "close"): "closed", ("surveyed", "close"): "closed",
    **{(s, "merge"): "merged" for s in OPEN_FOR_MERGE},
    **{(s, "withdraw"): "withdrawn" for s in OPEN_FOR_MERGE + ("disputed",)},
}
ALL_PAIRS = [(s, a) for s in STATES for a in ACTIONS]


def complaint(status, dept="LG", assignee=None):
    return SimpleNamespace(status=status, department_code=dept, assignee_id=assignee, number="20261123-LG-0001")


@pytest.mark.parametrize("state, action", [p for p in ALL_PAIRS if p in EXPECTED])
def test_allowed_transition(state, action):
    assert target_of(state, action) == EXPECTED[(state, action)]
    assert check(complaint(state), action, SYSTEM) == EXPECTED[(state, action)]


@pytest.mark.parametrize("state, action", [p for p in ALL_PAIRS if p not in EXPECTED])
def test_refused_transition_says_why(state, action):
    with pytest.raises(TransitionRefused) as err:
        target_of(state, action)
    assert f"cannot {action}" in err.value.reason and state in err.value.reason
    assert err.value.status == 409


def test_terminal_states_allow_nothing():
    for state in ("closed", "merged", "withdrawn"):
        assert available(complaint(state), SYSTEM) == []


def test_unknown_action_is_invalid():
    with pytest.raises(Invalid):
        target_of("registered", "teleport")


AMY = Actor("agent", 1, "agent", "LG")
BOB = Actor("agent", 2, "agent", "FN")
SUE = Actor("agent", 3, "supervisor", "LG")
MAX = Actor("agent", 4, "manager", None)


def test_agent_of_another_department_may_do_nothing():
    for action in ("assign", "merge", "start"):
        with pytest.raises(Forbidden, match="another department"):
            check(complaint("assigned", assignee=2), action, BOB)


def test_handler_actions_need_the_assignee_or_a_supervisor():
    c = complaint("in_progress", assignee=99)
    with pytest.raises(Forbidden, match="assignee"):
        check(c, "resolve", AMY)
    assert check(complaint("in_progress", assignee=1), "resolve", AMY) == "resolved"
    assert check(c, "resolve", SUE) == "resolved"
    assert check(c, "resolve", MAX) == "resolved"     # managers see every department


def test_supervisor_actions():
    with pytest.raises(Forbidden, match="supervisor"):
        check(complaint("disputed", assignee=1), "reopen", AMY)
    assert check(complaint("disputed"), "reopen", SUE) == "reopened"
    with pytest.raises(Forbidden):
        check(complaint("in_progress", assignee=1), "approve_plan", AMY)


def test_customer_may_only_answer_for_themselves():
    assert check(complaint("resolved"), "confirm", CUSTOMER) == "confirmed"
    assert check(complaint("resolved"), "dispute", CUSTOMER) == "disputed"
    assert check(complaint("awaiting_customer"), "resume", CUSTOMER) == "in_progress"
    for state, action in (("registered", "assign"), ("in_progress", "resolve"), ("confirmed", "close"),
                          ("disputed", "reopen")):
        with pytest.raises(Forbidden):
            check(complaint(state), action, CUSTOMER)


def test_available_actions_for_an_agent():
    assert available(complaint("registered"), AMY) == ["assign", "merge"]   # withdraw: the handler only
    assert available(complaint("registered", assignee=1), AMY) == ["assign", "merge", "withdraw"]
    assert set(available(complaint("in_progress", assignee=1), AMY)) == {
        "assign", "draft_plan", "await_customer", "resolve", "merge", "withdraw"}
