"""CRC-32 as the firmware computes it (firmware/crc32.c): IEEE 802.3, zlib's crc32."""

import zlib


def crc32(data: bytes, crc: int = 0) -> int:
    """CRC-32 of ``data``, continuing from ``crc`` (0 to start)."""
    return zlib.crc32(data, crc) & 0xFFFFFFFF
