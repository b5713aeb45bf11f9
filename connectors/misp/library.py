"""misp-stix, imported on first use: it takes most of a second, and the CLI must start fast.

misp-stix brings python-stix 1.x, whose `mixbox` installs an old `six` import hook without
`find_spec`. On Python 3.11 every failed import anywhere in the process then warns
(ImportWarning), which breaks code and tests that turn warnings into errors. The hook is
given the `find_spec` that six itself has had since 1.16; nothing else changes.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from functools import cache
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


def _find_spec(
    self: Any, fullname: str, path: object = None, target: object = None
) -> ModuleSpec | None:
    if fullname in self.known_modules:
        return importlib.util.spec_from_loader(fullname, self)
    return None


def _create_module(self: Any, spec: ModuleSpec) -> ModuleType:
    module: ModuleType = self.load_module(spec.name)
    return module


def _exec_module(self: Any, module: ModuleType) -> None:
    """six's lazy modules are complete once created."""


@cache
def parser_class() -> type:
    """misp-stix's STIX 2.1 export parser class (MISPtoSTIX21Parser)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportWarning)
        from misp_stix_converter import MISPtoSTIX21Parser

    for finder in sys.meta_path:
        legacy = type(finder)
        if hasattr(finder, "known_modules") and not hasattr(finder, "find_spec"):
            legacy.find_spec = _find_spec  # type: ignore[method-assign]
            legacy.create_module = _create_module  # type: ignore[attr-defined]
            legacy.exec_module = _exec_module  # type: ignore[attr-defined]
    parser: type = MISPtoSTIX21Parser
    return parser
