"""Sequence diagrams: one networkx graph per trace, rendered to Mermaid, DOT, SVG and PNG.

Draws from ``cachepact.model`` traces only (model or recorded run alike). networkx and matplotlib
load when a diagram is made, not on import.
"""

from ._render import EXTENSIONS, FORMATS, format_for, render, to_dot, to_mermaid
from ._sequence import messages, sequence_graph

__all__ = ["EXTENSIONS", "FORMATS", "format_for", "messages", "render", "sequence_graph", "to_dot", "to_mermaid"]
