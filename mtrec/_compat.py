"""Old import paths of mtrec 0.1, kept for one release with a DeprecationWarning.

mtrec 0.2 grouped the package by pipeline stage (``mtrec.nn``, ``mtrec.models.<family>``,
``mtrec.eval``, ``mtrec.serving``, ...). A learner's notebook written against 0.1 still runs:
``import mtrec.attention`` returns ``mtrec.nn.attention`` and warns once with the new path. The
aliases go away in mtrec 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import Any

_FAMILY = {
    "multitask": ("shared_bottom", "mmoe", "ple", "esmm"),
    "scenario": ("star", "scenario_moe"),
    "sequential": ("sasrec", "next_items", "cooccurrence"),
    "cf": ("bpr", "ease", "itemknn", "userknn", "content", "hybrid", "popularity"),
}
# old module -> the new modules that now hold its names (searched in order)
MOVED: dict[str, tuple[str, ...]] = {
    "mtrec.layers": ("mtrec.nn.layers",),
    "mtrec.attention": ("mtrec.nn.attention",),
    "mtrec.transformer": ("mtrec.nn.transformer", "mtrec.nn.encoder_decoder"),
    "mtrec.balancing": ("mtrec.weighting",),
    "mtrec.metrics": ("mtrec.eval.metrics",),
    "mtrec.topk": ("mtrec.eval.topk", "mtrec.data.interactions", "mtrec.models.cf.popularity"),
    "mtrec.sequential": ("mtrec.eval.next_item", "mtrec.data.sequences"),
    "mtrec.pipeline": ("mtrec.serving.recommender", "mtrec.serving.build", "mtrec.serving.rerank"),
    "mtrec.models.experts": ("mtrec.nn.layers", "mtrec.nn.losses", "mtrec.data.synthetic"),
    "mtrec.models.p5": ("mtrec.models.generative.p5", "mtrec.models.generative.codes"),
    "mtrec.models.p5_codes": ("mtrec.models.generative.codes",),
    "mtrec.models.p5_prompts": ("mtrec.models.generative.prompts",),
    "mtrec.results": ("mtrec.reporting.store", "mtrec.reporting.render"),
    "mtrec.report": ("mtrec.reporting.render", "mtrec.reporting.plots"),
    **{
        f"mtrec.models.{name}": (f"mtrec.models.{family}.{name}",)
        for family, names in _FAMILY.items()
        for name in names
    },
}


def _new_modules(old: str) -> list[types.ModuleType]:
    found = []
    for name in MOVED[old]:
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name))
    return found


class _Alias(types.ModuleType):
    """A stand-in for an old module: attribute look-ups go to the modules that hold them now."""

    def __getattr__(self, name: str) -> Any:
        for module in _new_modules(self.__name__):
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(
            f"{self.__name__}.{name} does not exist in mtrec 0.2; look in {MOVED[self.__name__]}"
        )


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        return _Alias(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        # Point the warning at the importing line (not at importlib's frames), so Python's
        # default filters show it in a notebook or script.
        level, frame = 1, sys._getframe(1)
        while frame is not None and (
            frame.f_code.co_filename.startswith("<frozen importlib")
            or frame.f_code.co_filename == __file__
        ):
            level, frame = level + 1, frame.f_back
        warnings.warn(
            f"{module.__name__} moved in mtrec 0.2: import from {' / '.join(MOVED[module.__name__])}"
            " (the old path goes away in mtrec 0.3)",
            DeprecationWarning,
            stacklevel=level,
        )


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
