"""Run a real sanetd whose engine runs out of memory on a script: the fault is injected from the test side.

    SANET_TEST_OOM="oom,ok,oom,oom" python tests/sanetd_oom.py --device cpu --weights DIR ...

wraps the SANet model's decoder (sanet.models.SANET.decode): successive calls raise torch.OutOfMemoryError ("oom",
the error CUDA's allocator raises) or run ("ok"); calls after the script run normally. Nothing in sanetd or the engine
knows about it: the engine's fallback chain (sanet.runtime.oom) and the daemon's error reporting see a real
torch.OutOfMemoryError. This machine has no GPU to exhaust.
"""
import os
import sys

import torch

from sanet.models import SANET

_script = [t.strip() for t in os.environ.get("SANET_TEST_OOM", "").split(",") if t.strip()]
_decode = SANET.decode


def _decode_or_oom(nets, inputs):
    if _script and _script.pop(0) == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected by tests/sanetd_oom.py)")
    return _decode(nets, inputs)


SANET.decode = _decode_or_oom

if __name__ == "__main__":
    from sanetd.main import main
    raise SystemExit(main(sys.argv[1:]))
