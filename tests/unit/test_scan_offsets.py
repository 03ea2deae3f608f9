"""The offset map scan keeps for each SQL text answers as the list of one offset per character would."""

import random

import pytest

from selfheal.cli.offsets import OffsetMap


def per_character(runs):
    return [o for origin, length in runs for o in ([None] * length if origin is None else range(origin, origin + length))]


def random_runs(rng):
    runs, at = [], rng.randrange(0, 50)
    for _ in range(rng.randrange(0, 6)):
        length = rng.randrange(0, 8)
        if rng.random() < 0.3:
            runs.append((None, length))
        else:
            at += rng.choice((0, 1, 2, 5))  # 0: goes on from the last run; more: an escape or a gap
            runs.append((at, length))
            at += length
    return runs


def test_the_map_answers_as_the_list_of_offsets_would():
    rng = random.Random(7)
    for _ in range(2000):
        runs = random_runs(rng)
        listed, mapped = per_character(runs), OffsetMap(runs)
        assert len(mapped) == len(listed) and list(mapped) == listed
        assert mapped == OffsetMap.of(listed)
        for i in range(len(listed)):
            assert mapped[i] == listed[i]
            assert mapped.first_in_file(i) == next((o for o in listed[i:] if o is not None), None)
        assert mapped.first_in_file(len(listed)) is None
        a, b = sorted(rng.randrange(0, len(listed) + 2) for _ in range(2))
        assert list(mapped[a:b]) == listed[a:b] and mapped[a:b] == OffsetMap.of(listed[a:b])
        piece = listed[a:b]
        contiguous = bool(piece) and None not in piece and piece == list(range(piece[0], piece[0] + len(piece)))
        assert mapped.span(a, b) == ((piece[0], piece[-1] + 1) if contiguous else None)
        assert list(mapped.shifted(10)) == [None if o is None else o + 10 for o in listed]
        spans, at = [], 0
        while rng.random() < 0.6 and at < len(listed):
            start = rng.randrange(at, len(listed))
            spans.append((start, rng.randrange(start, len(listed) + 1)))
            at = spans[-1][1]
        replaced, last = [], 0
        for start, end in spans:
            replaced += listed[last:start] + [None, None]
            last = end
        replaced += listed[last:]
        assert mapped.replaced(spans, 2) == OffsetMap.of(replaced)
        other = random_runs(rng)
        assert list(OffsetMap.joined([mapped, OffsetMap(other)])) == listed + per_character(other)


def test_a_literal_copied_as_written_is_one_run_however_long():
    mapped = OffsetMap.joined([OffsetMap([(100, 30)]), OffsetMap([(130, 40)])])
    assert list(mapped.runs()) == [(100, 70)]
    assert len(mapped) == 70 and mapped[69] == 169


def test_indexing_outside_the_text_is_an_error():
    mapped = OffsetMap([(3, 4)])
    assert mapped[-1] == 6
    with pytest.raises(IndexError):
        mapped[4]
    with pytest.raises(ValueError):
        mapped[::2]
