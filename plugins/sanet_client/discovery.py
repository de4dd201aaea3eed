"""Kept for older imports: the connection file's owner module is ``sanet_client.connect``."""
from .connect import (CONNECTION_FILE_NAME, START_HINT, ConnectionInfo, connection_file_path,  # noqa: F401
                      read_connection_file, runtime_dir)
