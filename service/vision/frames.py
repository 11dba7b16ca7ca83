"""Frames and edges are never ink: the table round a sheet, a screen's bezel, a scanner's shadow
along the page, a photo's dark corners, the outline of a note or a label's printed box.

Once the ink is thresholded these are pieces of "ink" of two shapes, both unlike a digit:

* **bands along the picture's edge**: a piece that touches the edge along a long stretch and
  lies almost wholly in a strip beside it (a digit cut by the edge still reaches into the
  picture);
* **outlines round the rest**: a thin piece (filling little of its box) that surrounds another
  piece of real size on all four sides, as a frame holds a picture (the stem of a 6 round its
  broken-off loop does not: nothing of it lies beyond the loop).

Such pieces are set aside before the digit is chosen, unless nothing of weight would be left:
a digit that touches the edge, or a 0 written large across a tight crop, is kept.
"""

from __future__ import annotations

import numpy as np

EDGE_STRIP = 0.15
"""A band along the edge lies in a strip this share of the picture's shorter side wide."""
IN_STRIP = 0.8
"""...with at least this share of its pixels in that strip,"""
ALONG_EDGE = 0.4
"""...touching the edge along at least this share of the side it lies on."""
OUTLINE_FILL = 0.2
"""An outline fills at most this share of its bounding box (a pen-drawn 0 fills 0.3-0.5)."""
HELD_EXTENT = 0.2
"""An outline sets aside only when the piece it holds spans at least this share of its box
(a digit in a frame does; a speck inside a 0 does not)."""


def frame_pieces(labels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Which of the pieces (OpenCV's connected components: `labels`, and `stats` without the
    background row) are frames or edges rather than ink, as a boolean per piece."""
    height, width = labels.shape
    left, top, wide, high, area = (stats[:, i].astype(np.int64) for i in range(5))
    count = len(area)
    frames = np.zeros(count, dtype=bool)
    strip = max(1, round(EDGE_STRIP * min(height, width)))
    touches = (left == 0) | (top == 0) | (left + wide == width) | (top + high == height)
    for piece in np.flatnonzero(touches):
        box = (int(left[piece]), int(top[piece]), int(wide[piece]), int(high[piece]))
        frames[piece] = _is_band(labels, int(piece) + 1, box, int(area[piece]), strip)
    fill = area / np.maximum(wide * high, 1)
    for piece in np.flatnonzero((fill <= OUTLINE_FILL) & ~frames):
        inside = (
            (left > left[piece])
            & (top > top[piece])
            & (left + wide < left[piece] + wide[piece])
            & (top + high < top[piece] + high[piece])
        )
        spans = np.maximum(wide / max(wide[piece], 1), high / max(high[piece], 1))
        held = np.flatnonzero(inside & (spans >= HELD_EXTENT))
        frames[piece] = any(_surrounds(labels, int(piece) + 1, stats[other]) for other in held)
    return frames


def _surrounds(labels: np.ndarray, label: int, held: np.ndarray) -> bool:
    """Whether piece `label` lies left and right of the held piece's box along its middle
    row, and above and below it along its middle column."""
    left, top, wide, high = (int(v) for v in held[:4])
    row = labels[top + high // 2] == label
    column = labels[:, left + wide // 2] == label
    return bool(
        row[:left].any()
        and row[left + wide :].any()
        and column[:top].any()
        and column[top + high :].any()
    )


def _is_band(
    labels: np.ndarray, label: int, box: tuple[int, int, int, int], area: int, strip: int
) -> bool:
    height, width = labels.shape
    left, top, wide, high = box
    mine = labels[top : top + high, left : left + wide] == label
    rows = np.arange(top, top + high)[:, None]
    cols = np.arange(left, left + wide)[None, :]
    to_edge = np.minimum(np.minimum(rows, height - 1 - rows), np.minimum(cols, width - 1 - cols))
    if int((mine & (to_edge < strip)).sum()) < IN_STRIP * area:
        return False
    along = (
        (labels[0] == label).sum() / width,
        (labels[-1] == label).sum() / width,
        (labels[:, 0] == label).sum() / height,
        (labels[:, -1] == label).sum() / height,
    )
    return bool(max(along) >= ALONG_EDGE)
