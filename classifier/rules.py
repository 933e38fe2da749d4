"""Transparent urgency rules (data/safety_rules.tsv).

A P0 rule hit always makes a suggestion P0: a rule is easy to read, to
test and to extend, and for health, safety and money a false alarm is
far cheaper than a miss. Every hit is shown to the agent as a reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RULES_FILE = Path(__file__).resolve().parent / "data" / "safety_rules.tsv"
_NEGATION = re.compile(r"(没有|没|不|未|无|别|怕|会)$")


@dataclass(frozen=True)
class Rule:
    level: str  # "P0" or "P1"
    name: str
    negation_guard: bool
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class RuleHit:
    level: str
    name: str
    matched: str

    @property
    def reason(self) -> str:
        return f"规则:{self.name}({self.matched})"


def load_rules(path: Path = RULES_FILE) -> tuple[Rule, ...]:
    rules = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        level, name, guard, pattern = line.split("\t")
        rules.append(Rule(level, name, guard == "neg", re.compile(pattern)))
    return tuple(rules)


RULES = load_rules()
RULE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(f"{r.level}:{r.name}" for r in RULES))


def match(normalized: str, rules: tuple[Rule, ...] = RULES) -> list[RuleHit]:
    """All rule hits in normalised text, P0 first, one per rule name."""
    hits: dict[str, RuleHit] = {}
    for rule in rules:
        key = f"{rule.level}:{rule.name}"
        if key in hits:
            continue
        for m in rule.pattern.finditer(normalized):
            before = normalized[max(0, m.start() - 2) : m.start()]
            if rule.negation_guard and _NEGATION.search(before):
                continue
            hits[key] = RuleHit(rule.level, rule.name, m.group(0))
            break
    return sorted(hits.values(), key=lambda h: h.level)


def p0_hit(hits: list[RuleHit]) -> bool:
    return any(h.level == "P0" for h in hits)
