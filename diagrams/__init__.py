"""Sequence diagrams: one networkx graph per trace, rendered to Mermaid, DOT, SVG and PNG."""

from .render import FORMATS, render, to_dot, to_mermaid
from .sequence import sequence_graph

__all__ = ["FORMATS", "render", "sequence_graph", "to_dot", "to_mermaid"]
