"""sanet_client: talk to the sanetd daemon from any Python (GIMP, Krita, scripts).

Needs only the standard library, pyzmq and msgpack. See docs/architecture.md for the API and
docs/protocol.md for the wire protocol.
"""
from .client import Client
from .connect import ConnectionInfo, connection_file_path, read_connection_file, runtime_dir
from .errors import (Busy, DaemonNotRunning, JobCancelled, JobFailed, NotAdmitted, ProtocolMismatch,
                     SanetClientError)
from .payloads import Labels, Layer, Mask, Result, StylePixels, StyleRef
from .protocol import PROTOCOL_VERSION

import logging as _logging

# a library stays quiet unless the host application configures logging (editors may have no stderr)
_logging.getLogger("sanet_client").addHandler(_logging.NullHandler())

__all__ = ["Client", "Layer", "Mask", "Labels", "StyleRef", "StylePixels", "Result", "SanetClientError",
           "DaemonNotRunning", "NotAdmitted", "Busy", "ProtocolMismatch", "JobFailed", "JobCancelled", "PROTOCOL_VERSION",
           "ConnectionInfo", "connection_file_path", "read_connection_file", "runtime_dir"]
