"""One-command installer for sanet-style: daemon venv, editor plug-ins, vendored wheels, autostart.

Standard library only, so any Python >= 3.10 can run it before anything else is installed.
Entry point: ``installers.install.main`` (``sanet-install``, ``installers/install.sh``, ``install.ps1``).
"""
