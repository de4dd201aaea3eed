"""Errors whose str() is the one line an artist or a script sees."""


class SanetError(Exception):
    """Base class: the message names the problem (which file, which field, what was expected)."""


class WeightsError(SanetError):
    """Checkpoint files missing, truncated, corrupt, or with unexpected keys/shapes."""


class DeviceError(SanetError):
    """The requested device or precision is not available here."""


class InputError(SanetError):
    """An image, mask or control value that cannot be used."""


class Cancelled(SanetError):
    """The job was cancelled between two stages or tiles."""


class OutOfMemory(DeviceError):
    """The device ran out of memory even after the fallbacks (smaller plans, lower precision on GPUs)."""
