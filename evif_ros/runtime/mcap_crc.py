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
    0; returns how many were written. Compressed chunks are left as they are. Reads one
    record at a time (a chunk is about 1 MiB), so a bag of any size costs one chunk of
    memory."""
    written = 0
    with open(Path(mcap_file), "r+b") as f:
        if f.read(len(MAGIC)) != MAGIC:
            return 0
        while len(head := f.read(9)) == 9:
            opcode, length = head[0], struct.unpack_from("<Q", head, 1)[0]
            body = f.tell()
            if opcode == FOOTER:
                break
            if opcode != CHUNK:
                f.seek(body + length)
                continue
            fixed = f.read(32)  # start, end, uncompressed size, crc, compression length
            if len(fixed) < 32:
                break
            crc, clen = struct.unpack_from("<II", fixed, 24)
            compression = f.read(clen)
            (rlen,) = struct.unpack("<Q", f.read(8))
            if crc == 0 and compression == b"":
                records = f.read(rlen)
                f.seek(body + 24)
                f.write(struct.pack("<I", crc32(records)))
                written += 1
            f.seek(body + length)
    return written


def checksum_bag(bag_dir: Path) -> int:
    """:func:`add_chunk_crcs` on every mcap file of a rosbag2 directory."""
    return sum(add_chunk_crcs(p) for p in sorted(Path(bag_dir).glob("*.mcap")))
