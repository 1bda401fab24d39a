"""Entry points of every Cloud Function, for functions-framework and the Cloud Functions deploy.

Each deployed function names its entry point (`--entry-point auth`); the module behind it is
imported on first access only, so a function's cold start loads its own code and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

_FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"
ENTRY_POINTS = sorted(m.name for m in pkgutil.iter_modules([str(_FUNCTIONS_DIR)]) if m.ispkg)


def __getattr__(name: str) -> Any:
    if name in ENTRY_POINTS:
        module = importlib.import_module(f"functions.{name}.main")
        return getattr(module, name)
    raise AttributeError(f"module 'main' has no entry point {name!r}")


def __dir__() -> list[str]:
    return [*ENTRY_POINTS, "ENTRY_POINTS"]
