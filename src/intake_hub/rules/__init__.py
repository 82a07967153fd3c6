"""Operator-edited rule files (`rules/*.yaml`): loading, validation and compiled forms."""

from intake_hub.rules.classifier import ClassifierRules, ClassifierSpec, Hit, TermRule
from intake_hub.rules.errors import Problem, RulesError
from intake_hub.rules.loader import RuleSet, load_rules
from intake_hub.rules.replies import ReplyRules
from intake_hub.rules.routing import RoutingRules

__all__ = [
    "ClassifierRules",
    "ClassifierSpec",
    "Hit",
    "Problem",
    "ReplyRules",
    "RoutingRules",
    "RuleSet",
    "RulesError",
    "TermRule",
    "load_rules",
]
