"""The executable model: participants, patterns as transition systems, their flows and explorer.

The bottom layer of cachepact: it imports nothing from the layers above (conformance, diagrams,
adapters). Modules are private; this ``__init__`` is the model's public API.
"""

from ._convergence import CONVERGES, DESIGN_MEANING, ON_FAILURE, DesignResult, convergence, designs_for
from ._explorer import DEFAULT_MAX_STATES, PROPERTIES, Exploration, PropertyResult, explore
from ._flows import FLOWS, RACES, flow, flows_of, program_table, responsibility_table
from ._participants import Actor
from ._patterns import (
    CACHE_ASIDE,
    CACHE_ASIDE_WRITE_THROUGH,
    NAMED,
    PATTERNS,
    READ_THROUGH,
    READS,
    REFRESH_AHEAD,
    WRITE_BEHIND,
    WRITE_THROUGH,
    WRITES,
    Background,
    Half,
    Instr,
    Kind,
    Pattern,
    compose,
    pattern_named,
    pattern_names,
)
from ._properties import INVARIANTS, SITUATIONS, Invariant, Situation, invariant_names, invariants_of
from ._steps import APP, Call, Step, Trace, calls_of, render_table, show
from ._system import EVENTS, RECOVERIES, Scenario, State, System
from ._verdict import Verdict

__all__ = [
    "APP",
    "CACHE_ASIDE",
    "CACHE_ASIDE_WRITE_THROUGH",
    "CONVERGES",
    "DEFAULT_MAX_STATES",
    "DESIGN_MEANING",
    "EVENTS",
    "FLOWS",
    "INVARIANTS",
    "NAMED",
    "ON_FAILURE",
    "PATTERNS",
    "PROPERTIES",
    "RACES",
    "READS",
    "READ_THROUGH",
    "RECOVERIES",
    "REFRESH_AHEAD",
    "SITUATIONS",
    "WRITES",
    "WRITE_BEHIND",
    "WRITE_THROUGH",
    "Actor",
    "Background",
    "Call",
    "DesignResult",
    "Exploration",
    "Half",
    "Instr",
    "Invariant",
    "Kind",
    "Pattern",
    "PropertyResult",
    "Scenario",
    "Situation",
    "State",
    "Step",
    "System",
    "Trace",
    "Verdict",
    "calls_of",
    "compose",
    "convergence",
    "designs_for",
    "explore",
    "flow",
    "flows_of",
    "invariant_names",
    "invariants_of",
    "pattern_named",
    "pattern_names",
    "program_table",
    "render_table",
    "responsibility_table",
    "show",
]
