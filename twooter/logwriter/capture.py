"""Everything the process writes to its console goes into the log as well.

stdout lines become INFO records, stderr lines WARN (ERROR when they look
like one), and an exception that ends the process is written as FATAL, with
its traceback, before the process dies. The console target still shows all
of it on the real terminal.
"""
from __future__ import annotations

import io
import logging
import re
import signal
import sys
import threading
from types import TracebackType

from . import targets
from .levels import ERROR, FATAL, INFO, WARN

ERROR_LINE = re.compile(r"^(Traceback \(most recent call last\)|\w*(Error|Exception)\b|(?i:error|fatal|critical)\b)")


def stderr_level(line: str) -> int:
    return ERROR if ERROR_LINE.match(line.lstrip()) else WARN


class ConsoleToLog(io.TextIOBase):
    """A text stream that logs each line written to it."""

    def __init__(self, logger: logging.Logger, level_of, original):
        super().__init__()
        self.logger = logger
        self.level_of = level_of
        self.original = original
        self._pending = threading.local()

    @property
    def encoding(self) -> str:
        return getattr(self.original, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.original.fileno()

    def write(self, text: str) -> int:
        if targets.emitting():
            # A logging handler reporting its own trouble: straight to the terminal, no loop.
            return self.original.write(text)
        pending = getattr(self._pending, "text", "") + text
        *lines, pending = pending.split("\n")
        self._pending.text = pending
        for line in lines:
            self._log(line)
        return len(text)

    def flush(self) -> None:
        pending = getattr(self._pending, "text", "")
        if pending and not targets.emitting():
            self._pending.text = ""
            self._log(pending)

    def _log(self, line: str) -> None:
        line = line.rstrip("\r")
        if line.strip():
            self.logger.log(self.level_of(line), "%s", line)


def log_fatal(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        logging.getLogger("twooter").log(INFO, "stopped by the operator (Ctrl-C)")
        return
    logging.getLogger("twooter").log(
        FATAL, "the process is stopping: uncaught %s: %s", kind.__name__, value, exc_info=(kind, value, trace)
    )


def log_thread_crash(arguments: threading.ExceptHookArgs) -> None:
    if arguments.exc_type is SystemExit:
        return
    name = arguments.thread.name if arguments.thread else "?"
    logging.getLogger("twooter").log(
        ERROR, "thread %s stopped by an uncaught %s", name, arguments.exc_type.__name__,
        exc_info=(arguments.exc_type, arguments.exc_value, arguments.exc_traceback),
    )


def stop_on_terminate(signum: int, _frame) -> None:
    logging.getLogger("twooter").log(INFO, "stopping: received %s", signal.Signals(signum).name)
    raise SystemExit(0)


def install() -> None:
    """Route the console and uncaught exceptions into the log (for `twooter serve`)."""
    if isinstance(sys.stdout, ConsoleToLog):
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop_on_terminate)
    sys.stdout = ConsoleToLog(logging.getLogger("twooter.console.stdout"), lambda _line: INFO, sys.stdout)
    sys.stderr = ConsoleToLog(logging.getLogger("twooter.console.stderr"), stderr_level, sys.stderr)
    sys.excepthook = log_fatal
    threading.excepthook = log_thread_crash
