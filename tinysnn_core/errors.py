"""The errors tinySNN raises on bad input. Every message says what was wrong and what to do."""


class TinySNNError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class PluginError(TinySNNError):
    """A plugin failed to load or registered something invalid."""


class UnknownPluginError(TinySNNError, KeyError):
    """A name that no plugin of that kind registered; the message lists the known names."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(TinySNNError, ValueError):
    """An invalid configuration value or key."""


class DatasetMissing(TinySNNError):
    """The data set is not installed; the message says how to install it."""


class ModelFileError(TinySNNError):
    """A model file that is truncated, corrupt, tampered with or of a newer format."""


class InputError(TinySNNError, ValueError):
    """Input data of the wrong shape, type or with NaN/inf values."""


class RecordingFileError(TinySNNError):
    """A recording file (``tinysnn eval --record``) that is truncated, corrupt or inconsistent."""
