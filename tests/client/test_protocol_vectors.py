"""The signature test vectors printed in docs/protocol.md are what the code computes."""
from __future__ import annotations

import re
from pathlib import Path

import msgpack

from sanet_client import protocol as P

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
KEY = bytes.fromhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
HEADER = msgpack.packb({"v": 1, "type": "ping", "msg_id": "m1", "time": 1700000000.0, "session": "s1"},
                       use_bin_type=True)
BUFFER = bytes(range(256)) * 4


def doc_value(label: str) -> str:
    m = re.search(re.escape(label) + r"\s*=\s*([0-9a-f]{64})", DOC)
    assert m, f"docs/protocol.md lost the test vector {label!r}"
    return m.group(1)


def test_header_bytes_match_the_doc():
    block = DOC[DOC.index("(msgpack, hex)") - 200:DOC.index("(msgpack, hex)")]
    hex_text = "".join(re.findall(r"\b[0-9a-f]{20,}\b", block))
    assert hex_text == HEADER.hex()


def test_signature_vectors():
    assert P.compute_signature(KEY, HEADER, []).decode() == doc_value("signature, no buffers")
    assert P.frame_digest(BUFFER).hex() == doc_value("digest(buffer)")
    assert P.compute_signature(KEY, HEADER, [BUFFER]).decode() == doc_value("signature, with that one buffer")
    assert P.frame_digest(bytes(5 << 20)).hex() == doc_value("digest(5 MiB of zero bytes)")
    assert P.frame_digest(b"").hex() == doc_value("digest(empty)")


def test_parallel_and_serial_digests_agree():
    big = bytes(range(251)) * (70_000)   # 17.5 MB: hashed in parallel chunks
    import hashlib
    chunks = [big[i:i + P.DIGEST_CHUNK] for i in range(0, len(big), P.DIGEST_CHUNK)]
    want = hashlib.sha256(b"".join(hashlib.sha256(c).digest() for c in chunks)).digest()
    assert P.frame_digest(big) == want
    assert P.frame_digest(memoryview(big)[1:1 + 10]) == hashlib.sha256(hashlib.sha256(big[1:11]).digest()).digest()
