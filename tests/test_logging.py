"""Diagnostics: the tinysnn logger hierarchy, the command line's one-line format, and a
command's logging set-up undone when it returns."""

import logging
import warnings

from tinysnn_core.log import (TinySNNNote, TinySNNWarning, cli_logging, get_logger)


def test_every_module_logs_under_tinysnn():
    assert get_logger("tinysnn_core.train").name == "tinysnn.core.train"
    assert get_logger("tinysnn_serial.deploy").name == "tinysnn.serial.deploy"
    assert get_logger("my_plugin.thing").name == "tinysnn.my_plugin.thing"
    assert get_logger("tinysnn.x").name == "tinysnn.x"


def test_the_command_line_format(capsys):
    log = get_logger("tinysnn_core.somewhere")
    with cli_logging(logging.INFO):
        log.info("resuming from x (5 training samples done)")
        log.warning("something lost")
        log.error("explore: point %r failed: %s", "p", "why")
        log.debug("not shown at info")
        warnings.warn("decay factor lost", TinySNNWarning)
        warnings.warn("a slower path", TinySNNNote)
    assert capsys.readouterr().err.splitlines() == [
        "resuming from x (5 training samples done)",
        "tinysnn: warning: something lost",
        "tinysnn: error: explore: point 'p' failed: why",
        "tinysnn: warning: decay factor lost",
        "tinysnn: note: a slower path"]


def test_the_level_and_what_is_put_back(capsys, monkeypatch):
    shown = []
    monkeypatch.setattr(warnings, "showwarning", lambda message, category, *a: shown.append(
        (str(message), category)))
    root = logging.getLogger("tinysnn")
    before = (list(root.handlers), root.level, root.propagate, warnings.showwarning)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with cli_logging(logging.WARNING):
            get_logger("tinysnn_core.x").info("quiet")
            get_logger("tinysnn_core.x").debug("quieter")
            # not ours: handed to the display that was there before, not reformatted
            warnings.warn("someone else's", DeprecationWarning)
    assert capsys.readouterr().err == ""
    assert shown == [("someone else's", DeprecationWarning)]
    assert (list(root.handlers), root.level, root.propagate, warnings.showwarning) == before


def test_outside_a_command_warnings_are_plain_python_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("lost", TinySNNWarning)
    assert caught[0].category is TinySNNWarning and issubclass(TinySNNNote, TinySNNWarning)
