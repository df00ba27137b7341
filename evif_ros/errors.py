"""Error types of evif_ros. Each carries a one-line message naming the file, topic or field."""


class EvifError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class LayoutError(EvifError, ValueError):
    """A message or buffer does not have the event layout of DESIGN.md."""


class InputFileError(EvifError):
    """A file is missing, unreadable or not of the expected kind."""


class ConfigError(EvifError, ValueError):
    """A parameter, scenario or configuration value is invalid."""
