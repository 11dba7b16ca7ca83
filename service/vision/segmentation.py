"""Cutting a row of handwritten digits into digits, left to right, from the ink's mask.

The mask's connected pieces are not digits one to one: a 4 is often two strokes, a 5's top bar
stands apart, a skipping pen breaks a 0 in two, and a speck or an i-dot-like mark is no digit;
two digits written close can touch and make one piece. So, in this order:

1. frames and edges (`service.vision.frames`), pieces along the picture's edge that are small
   beside the largest (a sheet's edge, the table) and specks small beside the row's height are
   dropped;
2. the row's height is the tallest remaining large piece's; pieces much lower than it are
   parts of a digit (a bar, a broken-off stroke) and join the digit they lie over or nearest;
3. digit-high pieces join when their columns overlap much (two strokes of one digit) or when,
   nearly touching, together they are no wider than one digit (the halves of a broken loop;
   two narrow digits written close, such as 11, look the same, so such a digit also comes
   with the reading of its halves as two digits);
4. a group much wider than a digit holds touching digits: it is cut at the columns of least
   ink near where equal-width digits would meet. Shape alone cannot tell a wide digit from two
   narrow touching ones, nor where a touching pair meets, so a group as wide as two digits
   comes with several ways to read it (whole, or cut at one of several columns of little
   ink), and the digit model picks the way it reads most surely (`service.usecases.number`).

Each digit is returned as the mask of its own ink and its box, so that it goes through the
same crop and MNIST layout as a picture of one digit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from service.vision.errors import NoDigitFound
from service.vision.frames import frame_pieces
from service.vision.ink import stroke_width

EDGE_SHARE = 0.5
"""A piece touching the picture's edge is no digit when smaller than this share of the largest
piece (the same rule picks a single digit's pieces)."""
LARGE_SHARE = 0.3
"""Pieces at least this share of the largest piece's area set the row's height."""
SPECK = 0.2
"""Pieces whose longer side is under this share of the row's height are specks."""
BRIDGE = 0.4
"""Ink closer to other ink than this share of the stroke's width is one piece: a pen that
skipped, a crease (the gaps of a broken stroke are a tenth to a half of the stroke's width,
digits written close are farther apart)."""
SLIVER = 0.5
"""Pieces thinner on average (area over longer side) than this share of the ink's stroke width
are slivers of a stroke."""
PART_HEIGHT = 0.5
"""Pieces lower than this share of the row's height are parts of a digit (a 5's bar, one
stroke of a 4, a piece of a broken stroke), not digits of their own."""
PART_GAP = 0.3
"""A part joins the nearest digit within this share of the row's height when it lies over
none; farther away it is a mark (a dash, a stray stroke) and is dropped."""
OVERLAP = 0.5
"""Digit-high pieces whose column spans overlap by this share of the narrower one are one
digit."""
STACKED = 0.5
"""Pieces whose columns overlap at all and whose rows overlap by at most this share of the
shorter one lie one above the other: one digit."""
JOIN_GAP = 0.12
"""Digit-high pieces this close (share of the row's height)..."""
JOIN_WIDTH = 0.8
"""...that together are at most this share of the row's height wide are one digit (the two
halves of a broken 0); two digits side by side are wider."""
WIDE = 1.25
"""A group wider than this many times its height holds touching digits (MNIST's digits, even
turned by 10 degrees, are narrower)."""
CLEARLY_DIGIT = 0.8
"""For a reader of one digit, a piece apart from the rest counts as a digit of its own only when
at least this share of the row's height: a 4's first stroke written well apart, the edge of a
shadow or bits of a sheet's dark edge are lower than the digit beside them (digits of a row are
about as high as each other). Set so that no picture of the single-digit upload corpus is
refused (its edge bits under perspective reach 0.78)."""
CLEARLY_SEVERAL = 2.6
"""A piece at least this many times as wide as high is several digits even to a reader of one
digit, which must not refuse a digit: MNIST's widest test digit (a flat 2) is 2.5 times as wide
as its ink is high once thresholded."""
MAYBE_TOUCHING = 0.95
"""A group wider than this many times the row's height may be two touching digits (a touching
pair of narrow digits, such as 17, is about this wide)..."""
KEEP_WHOLE = 1.6
"""...and one wider than this is no single digit (few MNIST digits are, once their row's
height is known)."""
CUT_AT = (0.35, 0.43, 0.5, 0.57, 0.65)
"""Where a cut between two touching digits is looked for, as shares of the pair's width
(narrow and wide digits meet off the middle)..."""
CUT_AT_WINDOW = 0.08
"""...each within this share of a digit's width."""
DIGIT_WIDTH = 0.7
"""A handwritten digit's typical width as a share of its height: how many digits a wide group
holds."""
CUT_WINDOW = 0.3
"""A cut between touching digits is looked for within this share of a digit's width either
side of where equal-width digits would meet."""


@dataclass(frozen=True)
class DigitPiece:
    """One digit of a row: the mask of its ink (the picture's size) and its box."""

    keep: np.ndarray
    box: tuple[int, int, int, int]
    """x, y, width, height in the picture's pixels."""


@dataclass(frozen=True)
class Stretch:
    """A stretch of the row holding one digit or touching digits: the ways to read it, each a
    tuple of digits left to right, the likeliest by shape first."""

    readings: tuple[tuple[DigitPiece, ...], ...]


@dataclass
class _Group:
    labels: list[int]
    left: int
    top: int
    right: int
    bottom: int
    apart: tuple[_Group, _Group] | None = None
    """For digit-high groups joined as one digit (`_halves`): the two as they would stand
    apart, a reading the digit model is offered too (two narrow digits written close look like
    the halves of a broken loop)."""

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def copy(self) -> _Group:
        return _Group(list(self.labels), self.left, self.top, self.right, self.bottom)

    def absorb(self, other: _Group) -> None:
        self.labels += other.labels
        self.left, self.top = min(self.left, other.left), min(self.top, other.top)
        self.right, self.bottom = max(self.right, other.right), max(self.bottom, other.bottom)


def split_digits(mask: np.ndarray, max_digits: int | None = None) -> list[Stretch]:
    """The digits in `mask` (uint8, 0 or 1, the ink without paper lines), left to right, as
    stretches of the row. Raises NoDigitFound when nothing digit-like is left, and stops early
    once the stretches' likeliest readings hold more than `max_digits` digits."""
    separate = _pieces(mask)
    if separate is None:
        raise NoDigitFound("no digit found: the image is blank")
    labels, stats, stroke = separate
    groups, row = _group(stats, mask.shape, stroke)
    stretches: list[Stretch] = []
    digits = 0
    for group in groups:
        readings = []
        ways = _cuttings(group, labels, row)
        for cuts in (cuts for index, cuts in enumerate(ways) if cuts not in ways[:index]):
            found = [_piece(group, labels, start, stop) for start, stop in itertools.pairwise(cuts)]
            pieces = tuple(piece for piece in found if piece is not None)
            if pieces:
                readings.append(pieces)
        if group.apart is not None:
            found = [_piece(part, labels, part.left, part.right) for part in group.apart]
            pieces = tuple(piece for piece in found if piece is not None)
            if len(pieces) == 2:
                readings.append(pieces)
        if not readings:
            continue
        stretches.append(Stretch(tuple(readings)))
        digits += len(readings[0])
        if max_digits is not None and digits > max_digits:
            break
    if not stretches:
        raise NoDigitFound("no digit found: only specks stand out from the background")
    return stretches


@dataclass(frozen=True)
class DigitCount:
    """How many digits a picture holds, for a reader of one digit."""

    clear: int
    """Digits it clearly holds: digits apart from each other (sharing no column) count when
    nearly as high as the row (`CLEARLY_DIGIT`), a piece is cut only when far wider than any
    one digit (`CLEARLY_SEVERAL`); 0 when none."""
    possible: int
    """Digits it may hold: pieces apart count as digits once as high as /number's digits
    (`PART_HEIGHT`). A single digit rarely has such a piece (a 4's first stroke written well
    apart does; none of the recipe's 6,000 validation digits does), so more than one is a doubt
    to tell, not a refusal. The halves of what may be a broken loop (`_Group.apart`) are not
    counted: a 4 in two strokes looks the same.
    Width is left to `CLEARLY_SEVERAL`: a piece as wide as two digits is as often one wide
    MNIST digit as two touching ones (flagging from KEEP_WHOLE's width doubts 0.13% of the
    validation digits)."""


def count_digits(mask: np.ndarray) -> DigitCount:
    """How many digits `mask` clearly holds, and how many it may hold (`DigitCount`)."""
    pieces = _pieces(mask)
    if pieces is None:
        return DigitCount(0, 0)
    labels, stats, stroke = pieces
    groups, row = _group(stats, mask.shape, stroke)
    apart: list[_Group] = []
    for group in groups:  # sorted by left edge
        # Digits written apart share no column; a 4 whose bar the pen skipped does.
        if apart and _overlap(apart[-1], group) > 0:
            apart[-1].absorb(group)
        else:
            apart.append(group)

    def digits(height: float) -> int:
        return sum(
            len(_cut_touching(group, labels, row, wide=CLEARLY_SEVERAL))
            for group in apart
            if group.height >= height * row
        )

    return DigitCount(digits(CLEARLY_DIGIT), digits(PART_HEIGHT))


def _pieces(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The mask's pieces, strokes a pen skipped across (gaps under BRIDGE of the stroke's width)
    counting as one: the label of each ink pixel (0 off the ink), each piece's stats (OpenCV's,
    without the background row; boxes grown by the bridge) and the ink's stroke width. None
    when there is no ink."""
    stroke = stroke_width(mask)
    reach = round(BRIDGE * stroke / 2)
    joined = mask
    if reach >= 1:
        window = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
        joined = cv2.dilate(mask, window)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    if count <= 1:
        return None
    stats = stats[1:]
    frames = frame_pieces(labels, stats)
    if frames.any() and not frames.all():
        stats = stats.copy()
        stats[frames, 4] = 0  # frames and edges are never ink: weightless, dropped as specks
    if reach >= 1:
        labels = labels * mask  # the grown margin is no ink
    return labels, stats, stroke


def _group(stats: np.ndarray, shape: tuple[int, ...], stroke: float) -> tuple[list[_Group], float]:
    """The pieces (OpenCV's stats without the background row) grouped into digits, left to
    right, before touching digits are cut; and the row's height. `stroke` is the ink's
    typical stroke width."""
    height, width = shape[:2]
    left, top, wide, high, area = (stats[:, i].astype(np.int64) for i in range(5))
    touches_edge = (left == 0) | (top == 0) | (left + wide == width) | (top + high == height)
    kept = ~(touches_edge & (area < EDGE_SHARE * area.max())) & (area > 0)
    if not kept.any():
        kept = area == area.max()
    large = kept & (area >= LARGE_SHARE * area[kept].max())
    kept &= np.maximum(wide, high) >= SPECK * float(high[large].max())
    # A sliver (a stroke's edge left by a skipping pen, thinner than the pen) is a part of a
    # digit whatever its height: never a digit of its own.
    sliver = area < SLIVER * stroke * np.maximum(wide, high)
    pieces = [
        _Group([int(i)], int(left[i]), int(top[i]), int(left[i] + wide[i]), int(top[i] + high[i]))
        for i in np.flatnonzero(kept)
    ]
    pieces.sort(key=lambda piece: piece.left)
    overlapping: list[_Group] = []
    for piece in pieces:  # sorted by left edge: a piece can only overlap the last group
        if overlapping and _one_above_other(overlapping[-1], piece):
            overlapping[-1].absorb(piece)
        else:
            overlapping.append(piece)
    solid = [group for group in overlapping if not sliver[group.labels].all()]
    row = float(max(group.height for group in solid or overlapping))
    tall = [
        group
        for group in overlapping
        if group.height >= PART_HEIGHT * row and not sliver[group.labels].all()
    ]
    if not tall:
        tall = [max(overlapping, key=lambda group: group.height)]
    digits = _join_digit_high(tall, row)
    for part in overlapping:
        if part in tall:
            continue
        home = _home_of(part, digits, row)
        if home is not None:
            home.absorb(part)
            half = None if home.apart is None else _home_of(part, list(home.apart), math.inf)
            if half is not None:
                half.absorb(part)
    return digits, row


def _one_above_other(a: _Group, b: _Group) -> bool:
    """Whether two pieces are parts of one digit written above each other: their columns
    overlap much, or they overlap at all and one lies above the other (a 8's two loops, a
    broken 1): digits of a row stand side by side."""
    overlap = _overlap(a, b)
    if overlap >= OVERLAP * min(a.width, b.width):
        return True
    beside = min(a.bottom, b.bottom) - max(a.top, b.top)
    return overlap > 0 and beside <= STACKED * min(a.height, b.height)


def _overlap(a: _Group, b: _Group) -> int:
    """How many columns the two groups share (negative: the gap between them)."""
    return min(a.right, b.right) - max(a.left, b.left)


def _join_digit_high(groups: list[_Group], row: float) -> list[_Group]:
    """Joins neighbouring digit-high groups (sorted by left edge) that are one digit: the
    halves of a broken loop, nearly touching and together no wider than a digit."""
    joined: list[_Group] = []
    for group in groups:
        if joined and _halves(joined[-1], group, row):
            joined[-1].apart = (joined[-1].copy(), group.copy())
            joined[-1].absorb(group)
        else:
            joined.append(group)
    return joined


def _halves(a: _Group, b: _Group, row: float) -> bool:
    together = max(a.right, b.right) - min(a.left, b.left)
    return -_overlap(a, b) <= JOIN_GAP * row and together <= JOIN_WIDTH * row


def _home_of(part: _Group, groups: list[_Group], row: float) -> _Group | None:
    """The digit a part belongs to: the one whose columns it overlaps most, else the nearest
    within PART_GAP of the row's height; None for a mark apart from every digit."""
    best, best_overlap, best_gap = None, 0, PART_GAP * row
    for group in groups:
        overlap = _overlap(part, group)
        if overlap > best_overlap:
            best, best_overlap = group, overlap
        elif best_overlap == 0 and -overlap <= best_gap:
            best, best_gap = group, -overlap
    return best


def _cut_touching(
    group: _Group, labels: np.ndarray, row: float, *, wide: float = WIDE
) -> list[tuple[_Group, int, int]]:
    """The group as one digit, or cut by shape into touching digits when wider than `wide`
    times the row's height: (group, first column, column past the last) for each."""
    height = max(group.height, row, 1.0)
    if group.width <= wide * height:
        return [(group, group.left, group.right)]
    cuts = _cut(group, labels, max(2, round(group.width / (DIGIT_WIDTH * height))))
    return [(group, start, stop) for start, stop in itertools.pairwise(cuts)]


def _cuttings(group: _Group, labels: np.ndarray, row: float) -> list[list[int]]:
    """The ways to cut a group into digits, as column lists from its left to its right edge,
    the likeliest by shape first. A group about as wide as two digits may be one wide digit or
    two touching ones, cut at one of several columns of little ink: its shape cannot tell,
    so every way is offered to a reader that can judge them (the digit model)."""
    height = max(group.height, row, 1.0)
    whole = [group.left, group.right]
    if group.width <= MAYBE_TOUCHING * height:
        return [whole]
    parts = max(2, round(group.width / (DIGIT_WIDTH * height)))
    by_shape = _cut(group, labels, parts)
    ways = [whole, by_shape] if group.width <= WIDE * height else [by_shape]
    if parts == 2:
        ways += [_cut(group, labels, 2, at=share) for share in CUT_AT]
    else:
        ways += [_cut(group, labels, parts - 1), _cut(group, labels, parts + 1)]
    if whole not in ways and group.width <= KEEP_WHOLE * height:
        ways.append(whole)
    return ways


def _cut(group: _Group, labels: np.ndarray, parts: int, at: float | None = None) -> list[int]:
    """Columns cutting the group into `parts` digits at the columns of least ink near where
    equal-width digits would meet (or, for two, near `at` of its width)."""
    region = labels[group.top : group.bottom, group.left : group.right]
    ink = np.isin(region, np.asarray(group.labels) + 1).sum(axis=0)
    step = group.width / parts
    window = max(1, round((CUT_WINDOW if at is None else CUT_AT_WINDOW) * step))
    cuts = [group.left]
    for index in range(1, parts):
        expected = round(index * step if at is None else at * group.width)
        low, high = max(1, expected - window), min(group.width - 1, expected + window + 1)
        if low >= high:
            continue
        columns = np.arange(low, high)
        # The least ink, and among equals the column nearest the expected meeting point.
        order = np.lexsort((np.abs(columns - expected), ink[low:high]))
        cuts.append(group.left + int(columns[order[0]]))
    cuts.append(group.right)
    return cuts


def _piece(group: _Group, labels: np.ndarray, start: int, stop: int) -> DigitPiece | None:
    """The digit of `group` between columns `start` and `stop`; None when it holds no ink."""
    keep = np.zeros(labels.shape, dtype=np.uint8)
    region = labels[group.top : group.bottom, start:stop]
    keep[group.top : group.bottom, start:stop] = np.isin(region, np.asarray(group.labels) + 1)
    rows = np.flatnonzero(keep[:, start:stop].any(axis=1))
    cols = np.flatnonzero(keep[group.top : group.bottom, start:stop].any(axis=0))
    if rows.size == 0:
        return None
    left, top = start + int(cols[0]), int(rows[0])
    return DigitPiece(keep, (left, top, int(cols[-1] - cols[0] + 1), int(rows[-1] - top + 1)))
