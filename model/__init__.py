"""The executable model: participants, patterns as transition systems, and their explorer."""

from .explorer import DEFAULT_MAX_STATES, PROPERTIES, Exploration, PropertyResult, StateSpaceTooLarge, explore
from .participants import CACHE_ASIDE, PATTERNS, READ_THROUGH, Actor, Pattern, pattern_named
from .steps import Step, Trace, render_table, show
from .system import EVENTS, Scenario, State, System

__all__ = [
    "Actor",
    "CACHE_ASIDE",
    "DEFAULT_MAX_STATES",
    "EVENTS",
    "Exploration",
    "PATTERNS",
    "PROPERTIES",
    "Pattern",
    "PropertyResult",
    "READ_THROUGH",
    "Scenario",
    "State",
    "StateSpaceTooLarge",
    "Step",
    "System",
    "Trace",
    "explore",
    "pattern_named",
    "render_table",
    "show",
]
