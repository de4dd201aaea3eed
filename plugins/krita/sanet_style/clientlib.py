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
    """Return the sanet_client module.

    A folder holding sanet_client/ (SANET_CLIENT_PATH, then vendor/, then pykrita/) goes FIRST on
    sys.path, so the installer's vendored pyzmq/msgpack win over older system copies; without
    one, a plain import is tried (sanet_client installed in Krita's Python).
    """
    if sys.modules.get("sanet_client") is not None:
        return sys.modules["sanet_client"]
    for folder in candidate_dirs():
        if os.path.isdir(os.path.join(folder, "sanet_client")):
            if folder not in sys.path:
                sys.path.insert(0, folder)
            where = folder
            break
    else:
        where = None
    try:
        import sanet_client
        return sanet_client
    except ImportError as exc:
        if where is None and getattr(exc, "name", None) == "sanet_client":
            raise ClientMissing(MISSING_MESSAGE)
        raise ClientMissing("sanet_client%s could not be imported: %s. Krita's Python needs pyzmq and "
                            "msgpack (the installer's vendor folder provides them)."
                            % (" in " + where if where else "", exc))
