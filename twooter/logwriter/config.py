"""The logging configuration file: targets, layouts, and rules of logger → level → targets.

It is read into Python's `logging` (levels set on loggers, our handlers
attached), and read again when the file changes, at most once a second, so
an operator can turn a logger up to TRACE or down to OFF on a running server.
A file that does not parse is reported with its path and line; at start-up
that stops the app, on a reload the previous configuration stays in force.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import levels, records, targets

RELOAD_CHECK_SECONDS = 1.0


class ConfigError(ValueError):
    """A logging configuration file that cannot be used, naming the file and line."""


@dataclass(frozen=True)
class Rule:
    logger: str
    level: int
    write_to: tuple[str, ...] | None


@dataclass(frozen=True)
class Config:
    targets: dict[str, tuple[str, str]]  # name -> (type, layout)
    rules: tuple[Rule, ...]


def _line_of(text: str, fragment: str) -> int:
    position = text.find(fragment)
    return text.count("\n", 0, position) + 1 if position >= 0 else 1


def load(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the logging configuration: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}, line {error.lineno}: {error.msg}") from None

    def fail(message: str, near: str = "") -> ConfigError:
        return ConfigError(f"{path}, line {_line_of(text, near) if near else 1}: {message}")

    if not isinstance(data, dict):
        raise fail("the file must hold one JSON object with \"targets\" and \"rules\"")
    raw_targets = data.get("targets")
    if not isinstance(raw_targets, dict):
        raise fail("\"targets\" must be an object of name: {type, layout}", '"targets"')
    found_targets: dict[str, tuple[str, str]] = {}
    for name, spec in raw_targets.items():
        near = f'"{name}"'
        if not isinstance(spec, dict) or spec.get("type") not in targets.TARGET_TYPES:
            raise fail(f"target {name!r} needs a type, one of {', '.join(targets.TARGET_TYPES)}", near)
        layout = spec.get("layout", "json")
        if not isinstance(layout, str):
            raise fail(f"target {name!r}: layout must be a string", near)
        try:
            records.check_layout(layout)
        except ValueError as problem:
            raise fail(f"target {name!r}: {problem}", near) from None
        found_targets[name] = (spec["type"], layout)
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list):
        raise fail("\"rules\" must be a list", '"rules"')
    rules = []
    for raw in raw_rules:
        near = json.dumps(raw.get("logger", "")) if isinstance(raw, dict) else ""
        if not isinstance(raw, dict) or not isinstance(raw.get("logger"), str):
            raise fail("each rule needs a \"logger\" name (\"\" for every logger)", '"rules"')
        try:
            level = levels.threshold(raw.get("minlevel", "TRACE"))
        except ValueError as problem:
            raise fail(f"rule for {raw['logger']!r}: {problem}", f'"logger": {near}') from None
        write_to = raw.get("writeTo")
        if write_to is not None:
            if isinstance(write_to, str):
                write_to = [write_to]
            unknown = [name for name in write_to if name not in found_targets]
            if unknown:
                raise fail(f"rule for {raw['logger']!r} writes to unknown target(s) {unknown}",
                           f'"logger": {near}')
            write_to = tuple(write_to)
        rules.append(Rule(raw["logger"], level, write_to))
    return Config(found_targets, tuple(rules))


class Applied:
    """What this process has put into `logging`, so it can be taken out again exactly."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.path: Path | None = None
        self.signature: tuple[int, int] | None = None
        self.checked_at = 0.0
        self.handlers: list[tuple[logging.Logger, logging.Handler]] = []
        self.loggers: list[logging.Logger] = []


_applied = Applied()


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _undo() -> None:
    for logger, handler in _applied.handlers:
        logger.removeHandler(handler)
        handler.close()
    for logger in _applied.loggers:
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    _applied.handlers.clear()
    _applied.loggers.clear()


def apply(config: Config) -> None:
    """Replace whatever configuration this process applied before with `config`."""
    with _applied.lock:
        _undo()
        made = {name: targets.TARGET_TYPES[kind](name, layout) for name, (kind, layout) in config.targets.items()}
        for rule in config.rules:
            logger = logging.getLogger(rule.logger or None)
            logger.setLevel(rule.level)
            _applied.loggers.append(logger)
            if rule.write_to is not None:
                # A rule with targets is final: its records are not written again by a parent's rule.
                logger.propagate = not rule.logger
                for name in rule.write_to:
                    logger.addHandler(made[name])
                    _applied.handlers.append((logger, made[name]))


def use(path: Path) -> None:
    """Apply the file at `path` now (ConfigError if it is unusable)."""
    with _applied.lock:
        signature = _signature(path)
        config = load(path)
        apply(config)
        _applied.path, _applied.signature, _applied.checked_at = path, signature, time.monotonic()


def reload_if_changed(locate: Callable[[], Path], now: float | None = None) -> bool:
    """Re-read the configuration if it changed, or if another file now applies
    (an override appeared in instance/); checked at most once a second.
    True if a new configuration was applied."""
    now = time.monotonic() if now is None else now
    if now - _applied.checked_at < RELOAD_CHECK_SECONDS:
        return False
    with _applied.lock:
        _applied.checked_at = now
        path = locate()
        signature = _signature(path)
        if _applied.path == path and signature == _applied.signature:
            return False
        try:
            config = load(path)
        except ConfigError as problem:
            _applied.signature = signature  # report a broken file once, not on every request
            logging.getLogger("twooter.logs").error("logging configuration not reloaded: %s", problem)
            return False
        apply(config)
        _applied.path, _applied.signature = path, signature
        logging.getLogger("twooter.logs").info("logging configuration loaded from %s", path)
        return True


def active_path() -> Path | None:
    return _applied.path
