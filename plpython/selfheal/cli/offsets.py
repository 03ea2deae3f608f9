"""Where each character of a SQL text found in a file came from.

A text is mostly literals copied as they are written, so its file offsets are kept as runs of
consecutive offsets, not as one int per character. Those lists were half of a scan's peak
memory (22 MB for one file of 4,000 SQL texts, 12 MB with runs), and a file of 4,000 texts took
4.2-4.3 times one of 1,000 where it takes 3.8-3.9 times now (bench.scan, the same run).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator


def _goes_on(starts: list[int], origins: list, at: int, origin: int | None) -> bool:
    """Whether a run from `at`, copied from `origin`, continues the last of these runs."""
    if not origins:
        return False
    last = origins[-1]
    return last is None if origin is None else last is not None and origin == last + at - starts[-1]


class OffsetMap:
    """The file offset of each character of a text, or None for a character that was not in
    the file (a placeholder put in for an f-string field or a driver's %s)."""

    __slots__ = ("_starts", "_origins", "_length")

    def __init__(self, runs: Iterable[tuple[int | None, int]] = ()):
        """runs: (file offset of the run's first character or None, its length), in text order."""
        starts: list[int] = []
        origins: list[int | None] = []
        at = 0
        for origin, length in runs:
            if length <= 0:
                continue
            if not _goes_on(starts, origins, at, origin):
                starts.append(at)
                origins.append(origin)
            at += length
        self._starts, self._origins, self._length = starts, origins, at

    @classmethod
    def run(cls, origin: int | None, length: int) -> OffsetMap:
        """The map of `length` characters copied from `origin` on (placeholders: None)."""
        return cls._made([0], [origin], length) if length > 0 else cls()

    @classmethod
    def of(cls, offsets: Iterable[int | None]) -> OffsetMap:
        """From one offset per character."""
        return cls((o, 1) for o in offsets)

    @classmethod
    def _made(cls, starts: list[int], origins: list[int | None], length: int) -> OffsetMap:
        made = cls.__new__(cls)
        made._starts, made._origins, made._length = starts, origins, length
        return made

    @classmethod
    def joined(cls, maps: Iterable[OffsetMap]) -> OffsetMap:
        """The map of texts put end to end."""
        maps = [m for m in maps if m._length]
        if len(maps) == 1:  # never changed once made, so it is shared
            return maps[0]
        starts: list[int] = []
        origins: list[int | None] = []
        at = 0
        for m in maps:
            # Only a map's first run can go on from the last one: within a map, runs never do.
            if _goes_on(starts, origins, at, m._origins[0]):
                starts += [at + s for s in m._starts[1:]]
                origins += m._origins[1:]
            else:
                starts += [at + s for s in m._starts]
                origins += m._origins
            at += m._length
        return cls._made(starts, origins, at)

    def replaced(self, spans: list[tuple[int, int]], width: int) -> OffsetMap:
        """The map of the text with each span (start, end), in order and apart, replaced by
        `width` characters that are not in the file. One pass, for a driver's placeholders in
        nearly every SQL text."""
        starts: list[int] = []
        origins: list[int | None] = []

        def add(at: int, origin: int | None) -> None:  # a run from `at`, counted in the new text
            if not _goes_on(starts, origins, at, origin):
                starts.append(at)
                origins.append(origin)

        ends = self._ends()
        run, position, moved = 0, 0, 0  # moved: where a character is now, less where it was
        for start, end in [*spans, (self._length, None)]:
            while run < len(self._starts) and self._starts[run] < start:  # position..start, as it was
                begin = max(self._starts[run], position)
                if begin < min(ends[run], start):
                    origin = self._origins[run]
                    add(begin + moved, None if origin is None else origin + begin - self._starts[run])
                if ends[run] > start:
                    break
                run += 1
            if end is None:
                break
            if width:
                add(start + moved, None)
            moved += width - (end - start)
            position = end
        return OffsetMap._made(starts, origins, self._length + moved)

    def _ends(self) -> list[int]:
        return self._starts[1:] + [self._length]

    def runs(self) -> Iterator[tuple[int | None, int]]:
        return ((origin, end - start) for start, origin, end in zip(self._starts, self._origins, self._ends()))

    def shifted(self, by: int) -> OffsetMap:
        """The same map for a text that begins `by` characters further into the file."""
        return OffsetMap._made(self._starts, [None if o is None else o + by for o in self._origins], self._length)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            if step != 1:
                raise ValueError("an offset map is sliced without a step")
            return self._cut(start, max(start, stop))
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("offset map index out of range")
        run = bisect.bisect_right(self._starts, index) - 1
        origin = self._origins[run]
        return None if origin is None else origin + index - self._starts[run]

    def _cut(self, start: int, stop: int) -> OffsetMap:
        if start == 0 and stop == self._length:
            return self
        first = max(bisect.bisect_right(self._starts, start) - 1, 0)
        last = bisect.bisect_left(self._starts, stop)  # runs first..last-1 reach into start..stop
        if start >= stop or first >= last:
            return OffsetMap()
        starts = [max(run_start - start, 0) for run_start in self._starts[first:last]]
        origins = self._origins[first:last]
        if origins[0] is not None:
            origins[0] += max(start - self._starts[first], 0)
        return OffsetMap._made(starts, origins, stop - start)

    def __iter__(self) -> Iterator[int | None]:
        for origin, length in self.runs():
            yield from (None,) * length if origin is None else range(origin, origin + length)

    def __eq__(self, other) -> bool:
        if isinstance(other, OffsetMap):
            return (self._starts, self._origins, self._length) == (other._starts, other._origins, other._length)
        return NotImplemented

    def __repr__(self) -> str:
        return f"OffsetMap({list(self.runs())!r})"

    def first_in_file(self, start: int = 0) -> int | None:
        """The file offset of the first character at or after `start` that is in the file."""
        if start >= self._length:
            return None
        for run in range(max(bisect.bisect_right(self._starts, start) - 1, 0), len(self._starts)):
            origin = self._origins[run]
            if origin is not None:
                return origin + max(start - self._starts[run], 0)
        return None

    def span(self, start: int, stop: int) -> tuple[int, int] | None:
        """(first, past the last) file offsets of characters start..stop, if the file holds them
        as they are, one after the other: None where a placeholder or an escape is among them."""
        stop = min(stop, self._length)
        if not 0 <= start < stop:
            return None
        cut = self._cut(start, stop)
        if len(cut._origins) != 1 or cut._origins[0] is None:
            return None
        return cut._origins[0], cut._origins[0] + stop - start
