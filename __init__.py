"""cachepact: a formal model and conformance test kit for caching patterns.

``cachepact.model`` defines what each pattern's participants must do and explores it;
``cachepact.conformance`` checks a user's own cache against that model;
``cachepact.adapters`` holds reference, broken and backend adapters.
"""

from .conformance.adapter import Adapter, DefinitionError

__version__ = "0.1.0"

__all__ = ["Adapter", "DefinitionError", "__version__"]
