"""Modules imported on first use, for what `mfc check` never runs.

numpy's import is half the time of checking a small spec, and a check runs no array
code: the op registry (mfc.ops) and the data module (mfc.data) are imported by the front
end for their tables and shape rules, and reach numpy only when an op runs or data is read.
"""

from __future__ import annotations

import importlib


class LazyModule:
    """Stands for the module `name` under the global `alias` of a module (its
    `namespace`) until an attribute is first asked of it; then imports it and puts the
    real module in its place, so that every later use is an ordinary global lookup."""

    def __init__(self, name: str, namespace: dict, alias: str):
        self._name, self._namespace, self._alias = name, namespace, alias

    def __getattr__(self, attribute: str):
        module = importlib.import_module(self._name)
        self._namespace[self._alias] = module
        return getattr(module, attribute)
