"""Every error bindcore raises on purpose: each says what went wrong and how to fix it."""

from __future__ import annotations


class BindcoreError(Exception):
    """Base class of every error bindcore raises on purpose."""


class PluginLoadError(BindcoreError):
    """A plugin distribution failed to import or to register."""


class DuplicateModalityError(BindcoreError):
    """Two plugins claim the same modality name."""


class UnknownModalityError(BindcoreError, KeyError):
    """No installed plugin provides the requested modality."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ConfigError(BindcoreError, ValueError):
    """A configuration (modality config, recipe, CLI option) is invalid."""


class InputError(BindcoreError, ValueError):
    """A raw input item cannot be preprocessed. The message names the item and the reason."""

    def __init__(self, item: object, reason: str, *, fix: str | None = None):
        self.item = item
        self.reason = reason
        self.fix = fix
        message = f"{describe_item(item)}: {reason}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class AnchorUnavailableError(BindcoreError):
    """The anchor's weights cannot be obtained (e.g. offline without a local checkpoint)."""


class CheckpointError(BindcoreError):
    """A checkpoint cannot be trusted: missing, truncated, damaged, or not a bindcore checkpoint."""


class RunDirectoryError(BindcoreError):
    """A run directory holds another run's outputs that a command would mix with or overwrite."""


class NonFiniteError(BindcoreError, FloatingPointError):
    """A computation produced NaN or Inf where a finite value is required."""


def describe_item(item: object, limit: int = 120) -> str:
    """A short human-readable name for an input item, for error messages.

    Paths are never shortened; long strings lose their middle, so a file name at the end survives.
    """
    import os

    if isinstance(item, os.PathLike):
        return repr(os.fspath(item))
    if isinstance(item, str):
        if len(item) > limit:
            keep = (limit - 3) // 2
            item = item[:keep] + "..." + item[-keep:]
        return repr(item)
    shape = getattr(item, "shape", None)
    if shape is not None:
        return f"{type(item).__name__} of shape {tuple(shape)}"
    text = repr(item)
    return text if len(text) <= limit else text[: limit - 3] + "..."
