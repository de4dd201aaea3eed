"""sanetd: the daemon that owns the SANet model and serves editor plug-ins over ZeroMQ (protocol v1)."""
__version__ = "0.1.0"
