"""A zip archive written as a stream of byte chunks, for StreamingHttpResponse.

zipfile writes into a small in-memory sink that is drained after every chunk, so memory
stays bounded by the chunk size whatever the number and size of the files. The sink cannot
seek, so zipfile writes each entry's sizes and CRC in a data descriptor after its data.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

CHUNK_SIZE = 64 * 1024


class _Sink:
    """A write-only, unseekable file object whose contents are taken out as they come."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        if data:
            self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        chunks, self._chunks = self._chunks, []
        if chunks:
            yield b"".join(chunks)


class Source(Protocol):
    """What a member's `open` returns: a binary file object, closed by leaving its `with`."""

    def read(self, size: int, /) -> bytes: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None, /
    ) -> object: ...


@dataclass(frozen=True)
class ZipMember:
    """One file of the archive: its name, when it was made, and how to read it.

    `open` returns a binary file object (read in chunks, then closed) or raises OSError when
    the file cannot be read; `size` (when known) lets zipfile choose zip64 up front."""

    name: str
    modified: datetime
    open: Callable[[], Source]
    size: int | None = None


def stream_zip(
    members: Iterable[ZipMember],
    on_error: Callable[[ZipMember, OSError], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """The archive's bytes, chunk by chunk. A member that cannot be opened is left out and
    reported to `on_error` (members are consumed lazily, so a later member can mention it)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for member in members:
            try:
                source = member.open()
            except OSError as error:
                if on_error is None:
                    raise
                on_error(member, error)
                continue
            info = zipfile.ZipInfo(member.name, date_time=_zip_time(member.modified))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            if member.size is not None:
                info.file_size = member.size
            with source, archive.open(info, mode="w", force_zip64=member.size is None) as target:
                while chunk := source.read(chunk_size):
                    target.write(chunk)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    # Zip timestamps start in 1980 and carry no time zone.
    moment = max(moment.replace(tzinfo=None), datetime(1980, 1, 1))
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
