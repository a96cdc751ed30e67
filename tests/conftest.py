"""Hypothesis profiles: a fast default for CI and everyday runs, a thorough one for nightly runs.

HYPOTHESIS_PROFILE=nightly python -m pytest
"""

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=60, stateful_step_count=20, deadline=None, derandomize=True)
settings.register_profile("nightly", max_examples=1000, stateful_step_count=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
