"""sanet-style for Krita 5: a Style Transfer docker and Tools > Scripts > Style Transfer….

Registration only happens inside Krita; the pure helpers (formats.py) import anywhere, which is
what the unit tests rely on.
"""
try:
    from krita import Krita, DockWidgetFactory, DockWidgetFactoryBase
except ImportError:  # not inside Krita (unit tests, linters)
    Krita = None

if Krita is not None and Krita.instance() is not None:
    from .docker import DOCKER_ID, StyleTransferDocker
    from .extension import StyleTransferExtension

    _app = Krita.instance()
    _app.addExtension(StyleTransferExtension(_app))
    _app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight,
                                                StyleTransferDocker))
