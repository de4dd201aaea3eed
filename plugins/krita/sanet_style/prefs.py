"""The plug-in's preferences of this Krita profile: kritarc, group [sanet_style] (the Server choice, the Quality
choice). Nothing here touches Qt; outside Krita (tests) the values live in memory."""
GROUP = "sanet_style"
_memory = {}


def _app():
    try:
        from krita import Krita
        return Krita.instance()
    except Exception:   # not inside Krita
        return None


def load(key, default=""):
    app = _app()
    value = app.readSetting(GROUP, key, default) if app is not None else _memory.get(key, default)
    return str(value)


def save(key, value):
    app = _app()
    if app is not None:
        app.writeSetting(GROUP, key, str(value))
    else:
        _memory[key] = str(value)
