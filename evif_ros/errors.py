"""Error types of evif_ros. Each carries a one-line message naming the file, topic or field."""


class EvifError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class LayoutError(EvifError, ValueError):
    """A message or buffer does not have the event layout of DESIGN.md."""


class InputFileError(EvifError):
    """A file is missing, unreadable or not of the expected kind."""


class ConfigError(EvifError, ValueError):
    """A parameter, scenario or configuration value is invalid."""


def dv_reason(exc: BaseException) -> str:
    """dv-processing's error as one line: its ``Error info:`` line (the message proper;
    the lines around it are a C++ source location and a stack trace)."""
    for ln in str(exc).splitlines():
        if "Error info:" in ln:
            return ln.split("Error info:", 1)[1].strip()
    return reason(exc)


def reason(exc: BaseException, limit: int = 200) -> str:
    """A library exception as one short line (its first non-empty line, or its type)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
