"""Where in the adapter's own code something happened: for messages that point at a line."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Iterable
from types import FrameType, TracebackType

_KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the cachepact package
_LIBRARIES = tuple(
    {
        os.path.abspath(p) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_path(key))
    }
)

Site = tuple[str, int, str]  # file, line, function


def _site(filename: str, line: int, function: str) -> str:
    return f"{os.path.basename(filename)}:{line} (in {function})"


def _is_kit(filename: str) -> bool:
    return filename.startswith(_KIT)


def _is_library(filename: str) -> bool:
    return filename.startswith(_LIBRARIES) or filename.startswith("<frozen")


def innermost(sites: Iterable[Site]) -> str | None:
    """From sites listed outermost first: the innermost in the adapter's own code, else the innermost
    outside cachepact (a library's), as ``file.py:12 (in read)``."""
    own = other = None
    for filename, line, function in sites:
        if _is_kit(filename):
            continue
        other = (filename, line, function)
        if not _is_library(filename):
            own = other
    chosen = own or other
    return _site(*chosen) if chosen else None


def of_traceback(tb: TracebackType | None) -> list[Site]:
    out = []
    while tb is not None:
        out.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    return out


def of_frame(frame: FrameType | None) -> list[Site]:
    out = []
    while frame is not None:
        out.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    return out[::-1]
