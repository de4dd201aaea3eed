"""Run a real sanetd whose engine gets stuck inside one native torch call: the fault is injected from the test side.

    SANET_TEST_STALL=/path/to/fifo python tests/sanetd_stall.py --device cpu --weights DIR ...

wraps the SANet model's decoder (sanet.models.SANET.decode): its first call touches `<fifo>.entered`, then reads one
byte from the FIFO with torch.from_file -- a native torch op that releases the GIL and blocks until the test writes
to the FIFO, like a long convolution with no cancellation point (or a model load) that outlasts sanetd's shutdown
grace. Later calls run normally. Nothing in sanetd or the engine knows about it.
"""
import os
import sys
from pathlib import Path

import torch

from sanet.models import SANET

_fifo = os.environ.get("SANET_TEST_STALL")
_decode = SANET.decode
_stalled = []


def _decode_after_a_stall(nets, inputs):
    if _fifo and not _stalled:
        _stalled.append(True)
        Path(_fifo + ".entered").touch()
        torch.from_file(_fifo, shared=False, size=1, dtype=torch.uint8)   # blocks in C++, GIL released
    return _decode(nets, inputs)


SANET.decode = _decode_after_a_stall

if __name__ == "__main__":
    from sanetd.main import main
    raise SystemExit(main(sys.argv[1:]))
