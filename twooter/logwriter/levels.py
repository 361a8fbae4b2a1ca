"""The seven levels of NLog, as real levels of Python's logging.

TRACE (5) sits below DEBUG. WARN is logging's WARNING (30) under NLog's
name. FATAL (50) is a level of its own name and number: records at 50 are
written as FATAL whether they come from `logger.fatal()` or from a library
calling `critical()`, because both mean "the process cannot go on". OFF is
only a threshold: a logger set to OFF (100) writes nothing at all.
"""
from __future__ import annotations

import logging

TRACE = 5
DEBUG = logging.DEBUG
INFO = logging.INFO
WARN = logging.WARNING
ERROR = logging.ERROR
FATAL = logging.CRITICAL
OFF = 100

# Highest first, as the viewer lists them.
RECORD_LEVELS: dict[str, int] = {
    "FATAL": FATAL,
    "ERROR": ERROR,
    "WARN": WARN,
    "INFO": INFO,
    "DEBUG": DEBUG,
    "TRACE": TRACE,
}
THRESHOLDS: dict[str, int] = {**RECORD_LEVELS, "OFF": OFF}
# Python's own spellings, accepted in configuration files too.
ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL"}


class TwooterLogger(logging.Logger):
    """A logger with NLog's `trace()` and a `fatal()` that is FATAL, not a synonym."""

    def trace(self, msg: object, *args, **kwargs) -> None:
        if self.isEnabledFor(TRACE):
            self._log(TRACE, msg, args, **kwargs)

    def fatal(self, msg: object, *args, **kwargs) -> None:  # type: ignore[override]
        if self.isEnabledFor(FATAL):
            self._log(FATAL, msg, args, **kwargs)


def threshold(name: str) -> int:
    """The number of a level name from a configuration file; ValueError if unknown."""
    key = str(name).strip().upper()
    key = ALIASES.get(key, key)
    if key not in THRESHOLDS:
        raise ValueError(f"unknown level {name!r}; expected one of {', '.join(THRESHOLDS)}")
    return THRESHOLDS[key]


def level_name(number: int) -> str:
    """The NLog name of a record's level; numbers between levels round down."""
    for name, value in RECORD_LEVELS.items():
        if number >= value:
            return name
    return "TRACE"


def install() -> None:
    """Teach `logging` the names, and give loggers created from now on trace()/fatal()."""
    logging.addLevelName(TRACE, "TRACE")
    logging.addLevelName(WARN, "WARN")
    logging.addLevelName(FATAL, "FATAL")
    logging.setLoggerClass(TwooterLogger)
    # Loggers that exist already (Flask's app.logger may) get the methods too.
    for existing in list(logging.Logger.manager.loggerDict.values()):
        if type(existing) is logging.Logger and existing.name.split(".")[0] == "twooter":
            existing.__class__ = TwooterLogger


install()
