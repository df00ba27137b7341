"""Chunk checksums for the mcap files this package writes.

rosbags writes every chunk's ``uncompressed_crc`` as 0 ("not computed"), so damaged message
data would be read as if it were whole. After a bag is closed, :func:`add_chunk_crcs` fills
in the CRC-32 of each uncompressed chunk in place (mcap spec: Chunk record, opcode 0x06);
readers that check them (rosbags, the mcap library) then refuse a damaged chunk, and
`evif replay` / `evif eval --bag` name the bag and where it broke.
"""

from __future__ import annotations

import struct
from pathlib import Path
from zlib import crc32

MAGIC = b"\x89MCAP0\r\n"
CHUNK, FOOTER = 0x06, 0x02


def add_chunk_crcs(mcap_file: Path) -> int:
    """Write the CRC-32 of every uncompressed chunk of a closed mcap file whose CRC is
    0; returns how many were written. Compressed chunks are left as they are."""
    path = Path(mcap_file)
    with open(path, "r+b") as f:
        data = f.read()
        if not data.startswith(MAGIC):
            return 0
        pos, written = len(MAGIC), 0
        while pos + 9 <= len(data):
            opcode = data[pos]
            (length,) = struct.unpack_from("<Q", data, pos + 1)
            body = pos + 9
            if opcode == FOOTER or body + length > len(data):
                break
            if opcode == CHUNK:
                (crc,) = struct.unpack_from("<I", data, body + 24)
                (clen,) = struct.unpack_from("<I", data, body + 28)
                compression = data[body + 32:body + 32 + clen]
                (rlen,) = struct.unpack_from("<Q", data, body + 32 + clen)
                start = body + 40 + clen
                if crc == 0 and compression == b"":
                    f.seek(body + 24)
                    f.write(struct.pack("<I", crc32(data[start:start + rlen])))
                    written += 1
            pos = body + length
    return written


def checksum_bag(bag_dir: Path) -> int:
    """:func:`add_chunk_crcs` on every mcap file of a rosbag2 directory."""
    return sum(add_chunk_crcs(p) for p in sorted(Path(bag_dir).glob("*.mcap")))
