"""Argument types shared by the command line and the pytest plugin (standard library only)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

# Bounds and defaults the command line, the pytest plugin and the kit share; here because the
# plugin may import nothing heavier than the standard library.
MAX_INSTANCES = 8  # app instances: past a few, more finds nothing fewer would not
MAX_WORKERS = 64  # processes a check or proof may be split over (workers=, --workers)
DEFAULT_STEP_TIMEOUT = 5.0  # seconds a step may block before it is the finding timeout
MAX_STEP_TIMEOUT = 3600.0
# Schedules a check explores of each small race (``max_examples`` sets it): fifty an example (5,000
# at Hypothesis' default of 100 examples), no fewer than 1,000 (the races most bugs show in end well
# within that: a quick check still proves them) and no more than 20,000 (``prove``'s default: deeper
# is a proof's job). A race with a fault gets a tenth (there are dozens), and at least 500.
SCHEDULES_PER_EXAMPLE = 50
MIN_SCHEDULES, MAX_SCHEDULES = 1_000, 20_000
FAULT_SHARE, FAULT_MIN = 10, 500


def whole_number(minimum: int = 1, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type=``: a whole number within [minimum, maximum], else a message naming the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, not {value}")
        return value

    return parse


def seconds(maximum: float) -> Callable[[str], float]:
    """An argparse ``type=``: a number of seconds above 0 and at most ``maximum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
        if not 0 < value <= maximum:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be above 0 and at most {maximum:g} seconds, not {text}")
        return value

    return parse
