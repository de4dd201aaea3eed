"""Find the torch-free `sanet_client` package at run time.

The installer copies sanet_client next to the plug-in (pykrita/sanet_style/vendor/ or pykrita/),
a developer may point SANET_CLIENT_PATH at plugins/ of a checkout, or it may simply be importable.
Importing lazily lets the docker load and say what is missing instead of Krita hiding the plug-in.
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
MISSING_MESSAGE = (
    "The sanet_client package was not found, so Style Transfer cannot talk to sanetd. "
    "Run the sanet-style installer for Krita again (it copies sanet_client into %s), "
    "or set SANET_CLIENT_PATH to the folder that contains sanet_client/." % os.path.join(_HERE, "vendor"))


class ClientMissing(ImportError):
    pass


def candidate_dirs():
    dirs = []
    env = os.environ.get("SANET_CLIENT_PATH")
    if env:
        dirs.extend(p for p in env.split(os.pathsep) if p)
    dirs.append(os.path.join(_HERE, "vendor"))      # pykrita/sanet_style/vendor/sanet_client
    dirs.append(os.path.dirname(_HERE))             # pykrita/sanet_client
    return dirs


def load():
    """Return the sanet_client module, adding a candidate folder to sys.path if needed."""
    try:
        import sanet_client
        return sanet_client
    except ImportError as first:
        if getattr(first, "name", None) not in (None, "sanet_client"):
            # sanet_client is there but one of its own imports (zmq, msgpack) is not.
            raise ClientMissing("sanet_client could not be imported: %s. Krita's Python needs pyzmq "
                                "and msgpack (the installer's vendor folder provides them)." % first)
    for folder in candidate_dirs():
        if os.path.isdir(os.path.join(folder, "sanet_client")) and folder not in sys.path:
            sys.path.insert(0, folder)
            try:
                import sanet_client
                return sanet_client
            except ImportError as exc:
                raise ClientMissing("sanet_client in %s could not be imported: %s. Krita's Python "
                                    "needs pyzmq and msgpack." % (folder, exc))
    raise ClientMissing(MISSING_MESSAGE)
