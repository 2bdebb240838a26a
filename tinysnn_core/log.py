"""Diagnostics: the ``tinysnn`` logger hierarchy and the warning categories.

Library code logs what it is doing (``get_logger(__name__)``: ``tinysnn_core.train`` logs to
``tinysnn.core.train``, ``tinysnn_serial.deploy`` to ``tinysnn.serial.deploy``, all under the
one logger ``tinysnn``) and warns (``warnings.warn(msg, TinySNNWarning)``) where a caller's
choice loses something, e.g. a decay factor that quantization rounds to 1. A Python caller
configures them as any others::

    logging.basicConfig(level=logging.INFO)                 # see the tinysnn messages
    warnings.simplefilter("error", tinysnn_core.TinySNNWarning)   # or make warnings fatal

The command line (``cli_logging``) shows them on stderr, one line each, as the commands always
have: ``tinysnn: warning: ...`` for warnings, the bare message for information.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from typing import Iterator

#: the root of every tinysnn logger
ROOT = "tinysnn"


class TinySNNWarning(UserWarning):
    """Something the caller asked for loses information (e.g. a decay factor rounded away)."""


class TinySNNNote(TinySNNWarning):
    """A slower path is taken with the same results (e.g. a backend falls back to the
    reference simulator); shown as ``tinysnn: note: ...`` on the command line."""


def get_logger(module: str) -> logging.Logger:
    """The logger of a module: ``tinysnn_X.mod`` logs to ``tinysnn.X.mod`` (one hierarchy for
    the core and the plugins); any other name is put under ``tinysnn``."""
    if module.startswith("tinysnn_"):
        name = ROOT + "." + module[len("tinysnn_"):]
    elif module == ROOT or module.startswith(ROOT + "."):
        name = module
    else:
        name = f"{ROOT}.{module}"
    return logging.getLogger(name)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (a test's capture, a
    redirected stream), not the one of when the handler was made."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the property wins
        pass


class LineFormatter(logging.Formatter):
    """The command line's one-line format: ``tinysnn: warning: MSG`` and ``tinysnn: error:
    MSG``; information as the bare message; debug with its logger's name."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        label = getattr(record, "label", None)
        if label:
            return f"tinysnn: {label}: {msg}"
        if record.levelno >= logging.ERROR:
            return f"tinysnn: error: {msg}"
        if record.levelno >= logging.WARNING:
            return f"tinysnn: warning: {msg}"
        if record.levelno >= logging.INFO:
            return msg
        return f"tinysnn: debug: {record.name}: {msg}"


def _show_warning(original):
    """A ``warnings.showwarning`` that logs tinysnn's own categories in the one-line format
    and leaves every other warning to ``original``."""

    def show(message, category, filename, lineno, file=None, line=None):
        if isinstance(category, type) and issubclass(category, TinySNNWarning):
            label = "note" if issubclass(category, TinySNNNote) else "warning"
            logging.getLogger(f"{ROOT}.warnings").warning(str(message), extra={"label": label})
        else:
            original(message, category, filename, lineno, file, line)
    return show


@contextlib.contextmanager
def cli_logging(level: int = logging.INFO) -> Iterator[logging.Handler]:
    """For the length of a command: the ``tinysnn`` loggers to stderr at ``level`` in the
    one-line format, and tinysnn's warnings through them. Everything is put back after, so a
    caller that runs ``cli.main`` in-process keeps its own logging set-up."""
    root = logging.getLogger(ROOT)
    handler = _CurrentStderr()
    handler.setFormatter(LineFormatter())
    saved = (root.level, root.propagate, warnings.showwarning)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False       # the caller's root handlers would print every line twice
    warnings.showwarning = _show_warning(saved[2])
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        root.propagate = saved[1]
        warnings.showwarning = saved[2]
