"""The one generic registry: lookups with did-you-mean, and metadata declared at registration."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest

from mmbench.errors import UnknownNameError
from mmbench.registry import Entry, Registry


@dataclass(frozen=True)
class Info:
    fast: bool = False
    size: int = 1


def test_lookup_names_and_did_you_mean() -> None:
    reg: Registry[str] = Registry("colour")
    reg.register("green")("G")
    reg.register("blue")("B")
    assert reg.get("blue") == "B" and "green" in reg and "red" not in reg
    assert reg.names() == ["blue", "green"] == list(reg)
    with pytest.raises(UnknownNameError, match=r"unknown colour 'gren'.*did you mean 'green'"):
        reg.get("gren")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("blue")("B2")


def test_metadata_is_built_per_entry_and_filters_in_registration_order() -> None:
    reg: Registry[object, Info] = Registry("thing", meta=Info)
    reg.register("zeta", fast=True)("z")
    reg.register("alpha")("a")
    reg.register("mid", fast=True, size=3)("m")
    assert reg.meta("alpha") == Info() and reg.meta("mid") == Info(fast=True, size=3)
    assert reg.entry("zeta") == Entry("zeta", "z", Info(fast=True))
    assert [e.name for e in reg.entries()] == ["zeta", "alpha", "mid"]
    assert [e.name for e in reg.entries(fast=True)] == ["zeta", "mid"]
    assert reg.names(fast=True) == ["mid", "zeta"]
    with pytest.raises(FrozenInstanceError):
        reg.meta("mid").size = 4  # type: ignore[misc]


def test_unknown_metadata_is_an_error_at_registration() -> None:
    reg: Registry[object, Info] = Registry("thing", meta=Info)
    with pytest.raises(TypeError, match="speed"):
        reg.register("x", speed=2)
    plain: Registry[object] = Registry("plain")
    with pytest.raises(TypeError, match="takes no metadata"):
        plain.register("x", fast=True)
    assert plain.names() == []
