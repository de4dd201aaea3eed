"""Text an artist reads in the docker: one clean sentence per message, and long paths that can wrap.

Pure Python (no Qt, no Krita), unit-tested outside Krita. Messages come from many places (sanet_client errors,
Krita, our own checks); they are normalised here so the docker never shows "sanetd: sanetd ...", a sentence
running into the next without a period, or a path too long to wrap that widens the docker.
"""
ZWSP = "\u200b"            # zero-width space: an invisible place where Qt may break a line
LONG_TOKEN = 24            # words longer than this get break points after / \ _ - . ,
_BREAK_AFTER = "/\\_-.,"
_PREFIXES = ("sanetd: ", "sanet-style: ", "style transfer: ")
_ENDINGS = ".!?…"


def sentence(text):
    """One line, without a redundant "sanetd:" prefix, starting with a capital (program names stay lower case)
    and ending with a full stop."""
    text = " ".join(str(text or "").split())
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if text.lower().startswith(prefix):
                text, stripped = text[len(prefix):].lstrip(), True
    if not text:
        return ""
    if not text.lower().startswith(("sanet", "krita")):
        text = text[0].upper() + text[1:]
    if text[-1] not in _ENDINGS:
        text += "."
    return text


def sentences(*parts):
    """Several messages as one paragraph: each a sentence, joined by spaces."""
    return " ".join(s for s in (sentence(p) for p in parts) if s)


def wrappable(text):
    """Insert invisible break points into long words (paths, endpoints) so a word-wrapping label never has to
    grow wider than the docker to show them."""
    out = []
    for word in str(text).split(" "):
        if len(word) > LONG_TOKEN:
            word = "".join(c + ZWSP if c in _BREAK_AFTER else c for c in word)
        out.append(word)
    return " ".join(out)


def plain(text):
    """The text without the invisible break points (what tests and copy/paste compare)."""
    return str(text).replace(ZWSP, "")
