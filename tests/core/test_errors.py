"""One error root: every error anechat raises on purpose is an AnechatError with a
message, a hint and a kind, and prints as one line."""

from __future__ import annotations

import importlib
import inspect

import pytest

from anechat.engines.errors import AnechatError, EngineError

#: every module that defines errors anechat raises on purpose
ERROR_MODULES = (
    "anechat.engines.errors",
    "anechat.history.errors",
    "anechat.hub.errors",
    "anechat.convert.errors",
    "anechat.catalog.remove",
)


def error_classes() -> list[type[BaseException]]:
    found = []
    for name in ERROR_MODULES:
        module = importlib.import_module(name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, BaseException) and cls.__module__ == name]
    return found


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_error_class_derives_from_the_one_root_and_has_a_kind(cls):
    assert issubclass(cls, AnechatError)
    assert isinstance(cls.kind, str) and cls.kind and " " not in cls.kind


def test_pull_conversion_history_and_removal_errors_are_not_engine_errors():
    from anechat.catalog.remove import ModelInUse, RemoveRefused
    from anechat.convert.errors import ConversionCancelled, ConversionFailed, ImportTargetExists
    from anechat.history.errors import HistoryError
    from anechat.hub.errors import HubOffline, PullError

    for cls in (PullError, HubOffline, ConversionFailed, ConversionCancelled, ImportTargetExists, HistoryError,
                ModelInUse, RemoveRefused):
        assert not issubclass(cls, EngineError), cls


def test_an_error_is_one_line_with_its_hint_and_keeps_its_parts():
    error = AnechatError("the disk is full", "free some space", "disk_full")
    assert str(error) == "the disk is full — free some space"
    assert (error.message, error.hint, error.kind) == ("the disk is full", "free some space", "disk_full")
    assert str(AnechatError("no hint")) == "no hint" and AnechatError("no hint").kind == "error"


def test_a_subclass_keeps_its_own_kind_unless_one_is_given():
    from anechat.hub.errors import HubOffline

    assert HubOffline("offline").kind == "offline"
    assert HubOffline("offline", kind="proxy").kind == "proxy"
