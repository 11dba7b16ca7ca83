"""Ruled and squared paper: finding its printed lines (and a margin) among the ink, and taking
them out without cutting the pen strokes that cross them."""

from __future__ import annotations

import cv2
import numpy as np

from service.vision.errors import NoDigitFound

LINE_SPAN = 0.75
"""A straight mark this long (a fraction of the picture's width or height) is a paper line."""
LINE_ANGLE = 4.0
"""Paper lines are within this many degrees of horizontal or vertical."""


def without_paper_lines(mask: np.ndarray, faint: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """`mask` (the thresholded ink) without ruled or squared paper lines and margins: long,
    thin, straight marks near horizontal or vertical. Lines are looked for in `faint` (the ink
    at a lower threshold), where a printed line lighter than the pen is still whole; only the
    pixels of the mask no darker (in `ink`, 0..255) than the line itself are taken out, and ink
    that crosses a line is kept across it. Raises NoDigitFound when lines are all there is."""
    height, width = mask.shape
    thickest = max(4, min(height, width) // 40)
    # Cheap test first (the line search costs milliseconds): is there a long run of ink that
    # is thin across, horizontally or vertically? A pen stroke of a digit is neither so long
    # nor, on a canvas, so thin.
    rows = cv2.reduce(faint, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    cols = cv2.reduce(faint, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    if rows.max(initial=0) * 2 < width and cols.max(initial=0) * 2 < height:
        return mask  # no row or column is half ink: a line spans three quarters

    found = False
    for crosswise, lengthwise in (
        ((thickest + 1, 1), (1, width // 3)),
        ((1, thickest + 1), (height // 3, 1)),
    ):
        thick: np.ndarray = cv2.morphologyEx(faint, cv2.MORPH_OPEN, np.ones(crosswise, np.uint8))
        thin = cv2.dilate(faint & ~thick & 1, np.ones((3, 3), np.uint8))  # allows a slight tilt
        if cv2.morphologyEx(thin, cv2.MORPH_OPEN, np.ones(lengthwise, np.uint8)).any():
            found = True
            break
    if not found:
        return mask
    segments: np.ndarray | None = cv2.HoughLinesP(
        faint,
        rho=1,
        theta=np.pi / 360,
        threshold=int(0.4 * min(height, width)),
        minLineLength=int(LINE_SPAN * min(height, width)),
        maxLineGap=max(3, min(height, width) // 40),
    )
    if segments is None:
        return mask
    erased = np.zeros_like(mask)
    for horizontal in (True, False):
        lines = np.zeros_like(mask)
        for x1, y1, x2, y2 in segments.reshape(-1, 4):
            angle = np.degrees(np.arctan2(abs(y2 - y1), abs(x2 - x1)))
            if (angle if horizontal else 90.0 - angle) > LINE_ANGLE:
                continue
            thickness = _line_thickness(faint, (x1, y1, x2, y2), horizontal)
            if thickness > thickest:
                continue  # a broad straight mark is a stroke, not a printed line
            cv2.line(lines, (int(x1), int(y1)), (int(x2), int(y2)), 1, thickness + 2)
        if not lines.any():
            continue
        # A pen stroke crossing a printed line is darker than the line: it stays.
        line_level = float(np.median(ink[(lines & faint) > 0]))
        lines &= mask & (ink <= 1.25 * line_level + 8).view(np.uint8)
        # Bridge strokes across the erased band: ink on both sides of it is kept.
        reach = 2 * thickest + 3
        shape = (1, reach) if horizontal else (reach, 1)
        across: np.ndarray = cv2.morphologyEx(
            mask & ~lines & 1, cv2.MORPH_CLOSE, np.ones(shape[::-1], np.uint8)
        )
        erased |= lines & ~across & 1
    cleaned: np.ndarray = mask & ~erased & 1
    if not cleaned.any():
        raise NoDigitFound("no digit found: only the paper's ruled or squared lines stand out")
    return cleaned


def _line_thickness(mask: np.ndarray, segment: tuple[int, int, int, int], horizontal: bool) -> int:
    """The median run of ink across the segment, sampled along it."""
    x1, y1, x2, y2 = segment
    runs = []
    for t in np.linspace(0.05, 0.95, 24):
        x, y = round(x1 + t * (x2 - x1)), round(y1 + t * (y2 - y1))
        line = mask[:, x] if horizontal else mask[y, :]
        centre = y if horizontal else x
        if not line[centre]:
            continue
        start = centre
        while start > 0 and line[start - 1]:
            start -= 1
        end = centre
        while end < len(line) - 1 and line[end + 1]:
            end += 1
        runs.append(end - start + 1)
    return int(np.median(runs)) if runs else 1
