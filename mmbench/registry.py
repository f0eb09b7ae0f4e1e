"""One small generic registry for encoders, fusion heads and metrics.

Objects are registered under a name with a decorator and looked up with :meth:`Registry.get`;
unknown names raise :class:`~mmbench.errors.UnknownNameError` with a "did you mean" hint.

A registry may also carry *metadata* per entry, so that what a component declares about itself
(a fusion is a torch head, its default search ranges...) lives next to it instead of in lists
elsewhere. ``Registry("fusion", meta=FusionInfo)`` builds ``FusionInfo(**meta)`` from the
keywords of ``register(name, **meta)``; a keyword the metadata type does not know is a
``TypeError`` at registration. Registries without a metadata type accept no keywords.

Registry packages (:mod:`mmbench.encoders`, :mod:`mmbench.fusion`, :mod:`mmbench.peers`) fill
their registry with :func:`import_submodules`: every module of the package is imported, and the
ones defining a built-in register it, so a new built-in is one new file and no list to extend.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic

from typing_extensions import TypeVar

from mmbench.errors import UnknownNameError, did_you_mean

T = TypeVar("T")
M = TypeVar("M", default=None)


@dataclass(frozen=True)
class Entry(Generic[T, M]):
    """One registered object with its name and metadata (``None`` without a metadata type)."""

    name: str
    obj: T
    meta: M


class Registry(Generic[T, M]):
    """Name -> object (and metadata) mapping with helpful lookup errors.

    :meth:`names` is sorted, for messages; :meth:`entries` keeps registration order, which is
    meaningful where it becomes an order of choices (e.g. Optuna categorical choices).
    """

    def __init__(self, kind: str, meta: Callable[..., M] | None = None) -> None:
        self.kind = kind
        self._meta_type = meta
        self._entries: dict[str, Entry[T, M]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` with metadata ``meta``."""
        info = self._make_meta(name, meta)

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, obj, info)
            return obj

        return decorator

    def _make_meta(self, name: str, meta: dict[str, Any]) -> M:
        if self._meta_type is None:
            if meta:
                raise TypeError(f"{self.kind} {name!r}: this registry takes no metadata {meta}")
            return None  # type: ignore[return-value]  # M defaults to None
        return self._meta_type(**meta)

    def entry(self, name: str) -> Entry[T, M]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; known: {known}"
            ) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def meta(self, name: str) -> M:
        return self.entry(name).meta

    def entries(self, **where: Any) -> list[Entry[T, M]]:
        """Entries in registration order whose metadata attributes equal ``where``."""
        return [
            e
            for e in self._entries.values()
            if all(getattr(e.meta, k) == v for k, v in where.items())
        ]

    def names(self, **where: Any) -> list[str]:
        """Sorted names, optionally only those whose metadata matches ``where``."""
        return sorted(e.name for e in self.entries(**where))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def option_problems(
    builder: Callable[..., Any], options: Iterable[str], what: str, supplied: Collection[str] = ()
) -> list[str]:
    """One line per option ``builder`` does not accept, with the closest valid one.

    ``supplied`` names arguments the framework passes itself (not user options). A builder
    taking ``**kwargs`` accepts anything.
    """
    import inspect

    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    valid = [p for p in params if p not in supplied and p != "self"]
    return [
        f"unknown option {key!r} for {what}{did_you_mean(key, valid)}; "
        f"valid options: {', '.join(valid)}"
        for key in options
        if key not in valid
    ]


def import_submodules(package: str, path: Iterable[str], *, skip: Collection[str] = ()) -> None:
    """Import every module of ``package`` (in name order) so that each registers what it defines.

    Called at the end of a registry package's ``__init__`` as
    ``import_submodules(__name__, __path__, skip=...)``. Private modules (``_util``) and those in
    ``skip`` are left alone: helpers that import torch at module level and are imported lazily
    where they are used, so that importing the package stays cheap.
    """
    for info in pkgutil.iter_modules(list(path)):
        if not info.name.startswith("_") and info.name not in skip:
            importlib.import_module(f"{package}.{info.name}")
