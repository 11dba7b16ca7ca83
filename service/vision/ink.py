"""Separating a handwritten digit's ink from the paper, canvas or screen it was written on.

A photo of paper is reflectance times light: the paper's brightness varies slowly (a lamp, a
shadow, the edge of the sheet against a table) while pen strokes are thin. So the paper is
estimated locally by a morphological closing (which erases every dark structure thinner than its
window and keeps large steps such as a shadow's edge), and ink is how much darker than its local
paper a pixel is, relative to that paper. Each picture is then thresholded by its own statistics
(Otsu, bounded below by its noise), ruled and squared paper lines are removed, and the digit is
taken as the main connected piece of ink with every piece close enough to belong to it (the
separate top bar of a 5, the two strokes of a 4, a broken loop), dropping specks and texture.

`find_digit` returns the digit's ink, bright on black (0..1), cropped to the digit.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from service.vision.errors import NoDigitFound
from service.vision.frames import frame_pieces
from service.vision.paper_lines import without_paper_lines

SMALL_PICTURE = 64
"""Pictures at most this many pixels a side are already a cropped digit (an MNIST array, an
icon-sized canvas): their background is taken as even, and no paper lines are looked for."""
CLOSING_FRACTION = 0.35
"""The wide paper-estimating window is this fraction of the picture's shorter side: wider than
any pen stroke of a digit that fits the picture."""
NARROW_FRACTION = 0.1
"""The narrow paper-estimating window: wider than a pen stroke of a digit that fills a third of
the picture, narrow enough to follow a shadow's edge."""
FAT_STROKE_SHARE = 0.8
"""A region dark against the wide window's paper is a fat stroke (not a shadow) when it is at
least this share of the thin strokes' typical darkness (chosen on a validation seed of the
upload corpus: the shadow condition reads 99.25% right at 0.8 and 99.0% at 0.7, the pen
conditions the same at both)."""
MIN_CONTRAST = 0.1
"""Ink must be at least this much darker than its paper (relative, 0..1) to count."""
MIN_STROKE_CONTRAST = 0.15
"""The digit's strokes must typically be at least this much darker than their paper: the
faintest pencil is about a quarter darker; blotches and grain in the paper itself are less."""
NOISE_SIGMAS = 6.0
"""The ink threshold is at least this many noise deviations above the paper's median."""
PAPER_HALF_SIZE = 240
"""Pictures at least this many pixels on their shorter side have their paper estimated at half
size: the paper varies slowly, and the closing is the costliest step."""
EVEN_PAPER = 12
"""Paper whose local brightness varies by at most this many grey levels is taken as evenly lit."""
MIN_SHEET_AREA = 0.05
"""A sheet of paper lying on a desk covers at least this share of the photo."""
SHEET_RECTANGULARITY = 0.85
"""A sheet fills at least this share of its smallest enclosing rectangle (a filled ellipse,
the roundest digit outline, fills 0.79)."""
STROKE_ELONGATION = 3.0
"""A piece at least this many times as long as it is wide (area over the square of its widest
point) is a stroke: a pen stroke is 8 to 30, a sheet of paper or a blot 1 to 2."""
MAX_STROKE_WIDTH = 0.15
"""A stroke is at most this share of the picture's shorter side wide (a digit filling a close-up
has strokes of about a tenth); a note with writing on it, wider, is no stroke."""
MIN_STROKE_AREA = 0.0005
"""Pieces smaller than this share of the picture are specks, not strokes."""
STROKE_MAJORITY = 2.0
"""Mostly dark pictures are read as dark ink only when their dark strokes outweigh their light
ones this many times over; light ink on dark stays the reading otherwise."""
PEN_SKIP_SHARE = 0.25
"""Gaps across a stroke narrower than this share of its width are closed (chosen on a
validation seed of the upload corpus: broken strokes read 99.5% right with the gaps closed and
99.1% without, MNIST's test set the same)."""


def find_digit(grey: np.ndarray, steps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The digit's ink in `grey` (uint8, either polarity), bright on black in 0..1, cropped to
    the digit. Raises NoDigitFound when no ink stands out from the background. `steps`, when
    given, receives the intermediate pictures (for the README's figure and for debugging)."""
    counts = _histogram(grey)
    # A drawing made on a computer (a canvas, an MNIST array) has one exact background value
    # over most of its pixels; no photo or scan has. Its paper needs no estimating.
    clean = int(counts.max()) >= grey.size // 2
    small = max(grey.shape) <= SMALL_PICTURE
    if not _ink_is_dark(counts) and (clean or small or not _paper_on_a_dark_surface(grey)):
        grey = cv2.bitwise_not(grey)
        counts = counts[::-1]
    background = int(counts.argmax())
    if clean or small:
        level = background if clean else int(np.searchsorted(np.cumsum(counts), grey.size / 2))
        ink = _darkness(grey, np.uint8(max(level, 1)), level)
    else:
        if min(grey.shape) >= 16:
            grey = cv2.GaussianBlur(grey, (3, 3), 0)
        ink = _relative_ink(grey)
    threshold, floor = _thresholds(ink)
    mask = (ink >= threshold).view(np.uint8)
    if steps is not None:
        steps.update(upright=grey, ink=ink, threshold=mask.copy())
    if not (clean or small):
        faint = (ink >= max(MIN_CONTRAST * 255, threshold // 2)).view(np.uint8)
        mask = without_paper_lines(mask, faint, ink)
    keep = _digit_pieces(mask)
    if steps is not None:
        steps.update(without_lines=mask, digit=keep)
    return _crop(ink, keep, floor, on_paper=not (clean or small))


def find_drawn_digit(ink: np.ndarray, steps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The digit in a drawing's own ink (uint8, bright on black: a transparent canvas's alpha),
    as `find_digit` returns it. There is no paper to estimate and no polarity to decide: only
    the threshold, and specks apart from the digit to drop."""
    floor, mask = _drawn_threshold(ink)
    keep = _digit_pieces(mask)
    if steps is not None:
        steps.update(upright=ink, ink=ink, threshold=mask, without_lines=mask, digit=keep)
    return _crop(ink, keep, floor, on_paper=False)


def _drawn_threshold(ink: np.ndarray) -> tuple[int, np.ndarray]:
    """The noise floor `_thresholds` gives a drawing's ink, and the mask of the ink that reaches
    its threshold, in the fewest passes over the pixels. Where most of a drawing is its exact
    background (0), the median and its deviation are 0, so the threshold is Otsu's (OpenCV's,
    the same as `_otsu`) unless under DRAWN_THRESHOLD, and the floor is DRAWN_FLOOR."""
    if cv2.countNonZero(ink) * 2 > ink.size:
        threshold, floor = _thresholds(ink)
        return floor, (ink >= threshold).view(np.uint8)
    if cv2.minMaxLoc(ink)[1] < DRAWN_THRESHOLD:
        raise NoDigitFound(
            "no digit found: the image is blank or its strokes do not stand out from the background"
        )
    otsu, mask = cv2.threshold(ink, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    if int(otsu) + 1 < DRAWN_THRESHOLD:
        mask = (ink >= DRAWN_THRESHOLD).view(np.uint8)
    return DRAWN_FLOOR, mask


def _ink_is_dark(counts: np.ndarray) -> bool:
    """Whether the picture is dark ink on light paper (rather than chalk on a board, an
    MNIST-style array or a dark-mode canvas). The background is the larger crowd of pixels at
    one end of the picture's range; ink is the fewer at the other end. The median alone is
    fooled by a shadow over half the sheet or a dim photo."""
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    low = int(np.searchsorted(cumulative, 0.01 * total))
    high = int(np.searchsorted(cumulative, 0.99 * total))
    band = max(1, round(0.15 * (high - low)))
    near_dark = int(cumulative[min(255, low + band)])
    near_light = total - int(cumulative[max(0, high - band - 1)])
    if np.searchsorted(cumulative, total / 2) >= 128:
        # Mostly bright: paper, unless the dark end clearly holds the background. (A page of
        # paper texture alone has no ink to tell the ends apart.)
        return near_dark <= 4 * near_light
    return near_light >= near_dark


def _paper_on_a_dark_surface(grey: np.ndarray) -> bool:
    """For a photo whose pixels are mostly dark: whether it is still dark ink on paper, the
    paper being a note on a dark desk, rather than light ink on a dark board. Either the light
    part holds a sheet (a large piece clear of the frame, as rectangular as paper) or the dark
    pixels form the thin strokes, enclosed by light ones, far more than the light pixels do."""
    _, dark = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    light = 1 - dark
    return _holds_a_sheet(light) or _stroke_area(dark) > STROKE_MAJORITY * _stroke_area(light)


def _holds_a_sheet(mask: np.ndarray) -> bool:
    """Whether `mask` has a piece clear of the frame, at least MIN_SHEET_AREA of the picture,
    that fills at least SHEET_RECTANGULARITY of its smallest enclosing rectangle (holes, the
    writing, included): a sheet of paper, tilted or not. A chalk digit's outline fills far less."""
    height, width = mask.shape
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        left, top, box_w, box_h = cv2.boundingRect(contour)
        if left == 0 or top == 0 or left + box_w == width or top + box_h == height:
            continue
        area = cv2.contourArea(contour)
        if area < MIN_SHEET_AREA * mask.size:
            continue
        (_, _), (side_a, side_b), _ = cv2.minAreaRect(contour)
        if area >= SHEET_RECTANGULARITY * side_a * side_b:
            return True
    return False


def _stroke_area(mask: np.ndarray) -> int:
    """Pixels of `mask` in stroke-like pieces: clear of the frame, at least MIN_STROKE_AREA of
    the picture, at most MAX_STROKE_WIDTH of its shorter side wide and at least
    STROKE_ELONGATION times as long as wide (area over the square of the widest point)."""
    height, width = mask.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    widths = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    total = 0
    for piece in range(1, count):
        left, top, box_w, box_h, area = (int(v) for v in stats[piece])
        if area < MIN_STROKE_AREA * mask.size or left == 0 or top == 0:
            continue
        if left + box_w == width or top + box_h == height:
            continue
        box = (slice(top, top + box_h), slice(left, left + box_w))
        widest = 2.0 * float(widths[box][labels[box] == piece].max())
        thin = widest <= MAX_STROKE_WIDTH * min(height, width)
        if thin and area >= STROKE_ELONGATION * widest * widest:
            total += area
    return total


def _relative_ink(grey: np.ndarray) -> np.ndarray:
    """How much darker than its local paper each pixel is, relative to the paper (0..255)."""
    height, width = grey.shape
    # The paper varies slowly: estimate it on a half-size copy, for a quarter of the work.
    half = min(height, width) >= PAPER_HALF_SIZE
    coarse = (
        cv2.resize(grey, (width // 2, height // 2), interpolation=cv2.INTER_AREA) if half else grey
    )
    # Two estimates. A narrow window follows shadows and light closely but hollows out a fat
    # stroke; a wide one fills the fattest stroke but also fills a shadow narrower than
    # itself. Where the wide one finds a dark region as dark as the pen's strokes are, it is a
    # stroke; elsewhere (a shadow, a smudge: greyer than the pen) the narrow one is right.
    narrow = _closing(coarse, NARROW_FRACTION, (height, width))
    wide = _closing(coarse, CLOSING_FRACTION, (height, width))
    low, level, high = _percentiles(_histogram(wide), (0.0, 0.9, 1.0))
    broad = _darkness(grey, wide, level)
    if high - low <= EVEN_PAPER:
        return broad
    fine = _darkness(grey, narrow, level)
    counts = _histogram(fine)
    threshold, _ = _thresholds(fine, counts)
    strokes = counts[threshold:]
    stroke_level = _percentiles(strokes, (0.5,))[0] + threshold if strokes.any() else 255
    fat = (broad >= FAT_STROKE_SHARE * stroke_level).view(np.uint8)
    ink: np.ndarray = cv2.copyTo(broad, fat, fine)
    return ink


def _histogram(levels: np.ndarray) -> np.ndarray:
    """How many pixels hold each of the 256 levels (OpenCV's: a third of NumPy's time on a
    photo)."""
    counts: np.ndarray = cv2.calcHist([levels], [0], None, [256], [0, 256]).ravel()
    return counts.astype(np.int64)


def _percentiles(counts: np.ndarray, shares: tuple[float, ...]) -> list[int]:
    """The levels at `shares` (0..1) of a histogram's mass."""
    cumulative = np.cumsum(counts)
    return [
        min(len(counts) - 1, int(np.searchsorted(cumulative, share * cumulative[-1])))
        for share in shares
    ]


def _closing(coarse: np.ndarray, fraction: float, size: tuple[int, int]) -> np.ndarray:
    """The paper under `coarse` by a closing whose square window is `fraction` of its shorter
    side, at full size `size` (rows, columns)."""
    side = max(3, round(min(coarse.shape) * fraction) | 1)
    window = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    # Extending the picture past its edges keeps a dark band along an edge (the table beside
    # the sheet, a shadow) as wide as the window, so the closing keeps it as background
    # instead of filling it in as ink.
    pad = side // 2 + 1
    padded = cv2.copyMakeBorder(coarse, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    paper = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, window)[pad:-pad, pad:-pad]
    if paper.shape != size:
        paper = cv2.resize(paper, size[::-1], interpolation=cv2.INTER_LINEAR)
    return paper


def _darkness(grey: np.ndarray, paper: np.ndarray | np.uint8, level: float) -> np.ndarray:
    """Ink relative to the paper (0..255), so ink in a shadow counts as much as ink in the
    light; but not below half the sheet's brightness, or a dark table's texture would read
    as ink."""
    floor = max(1.0, 0.5 * float(level))
    if not isinstance(paper, np.ndarray):  # one level for the whole picture
        darker = paper - np.minimum(grey, paper)
        scaled: np.ndarray = cv2.convertScaleAbs(darker, alpha=255.0 / max(float(paper), floor))
        return scaled
    relative = np.maximum(paper, np.uint8(min(255.0, floor))).astype(np.float32)
    ink = cv2.divide(cv2.subtract(paper, grey).astype(np.float32), relative, scale=255.0)
    return cv2.convertScaleAbs(ink)


def _thresholds(levels: np.ndarray, counts: np.ndarray | None = None) -> tuple[int, int]:
    """The ink threshold (Otsu, but never inside the paper's noise) and the noise floor below
    which ink is dropped from the final picture, both in 0..255. `counts` is the levels'
    histogram, when already made."""
    if counts is None:
        counts = _histogram(levels)
    cumulative = np.cumsum(counts)
    half = levels.size / 2
    median = int(np.searchsorted(cumulative, half))
    # The median absolute deviation, read off the histogram: the smallest spread d for which
    # median - d .. median + d holds half the pixels.
    within = cumulative[np.minimum(median + _LEVELS, 255)]
    below = median - _LEVELS - 1
    within -= np.where(below >= 0, cumulative[np.maximum(below, 0)], 0)
    deviation = _MAD_TO_SIGMA * max(float(np.searchsorted(within, half)), 1.0)
    noise = median + NOISE_SIGMAS * deviation
    total = int(cumulative[-1])
    noise_level = int(min(255, noise))
    above_noise = total - (int(cumulative[noise_level - 1]) if noise_level else 0)
    if total == cumulative[int(MIN_CONTRAST * 255)] or above_noise == 0:
        raise NoDigitFound(
            "no digit found: the image is blank or its strokes do not stand out from the background"
        )
    threshold = math.ceil(max(float(_otsu(counts, cumulative)) + 1, noise, MIN_CONTRAST * 255))
    floor = int(min(threshold * 0.5, median + FLOOR_SIGMAS * deviation))
    return threshold, floor


_LEVELS = np.arange(256)
_MAD_TO_SIGMA = 1.4826
"""A normal distribution's standard deviation per median absolute deviation."""
FLOOR_SIGMAS = 3.0
"""Ink less than this many noise deviations above the paper's median is dropped."""
DRAWN_THRESHOLD = math.ceil(max(NOISE_SIGMAS * _MAD_TO_SIGMA, MIN_CONTRAST * 255))
"""The lowest ink threshold of a picture whose median and deviation are 0 (a drawing)."""
DRAWN_FLOOR = int(min(DRAWN_THRESHOLD * 0.5, FLOOR_SIGMAS * _MAD_TO_SIGMA))
"""The noise floor of a picture whose median and deviation are 0 (a drawing)."""


def _otsu(counts: np.ndarray, cumulative: np.ndarray) -> int:
    """Otsu's threshold of a 256-level histogram (`cumulative` is its running sum): the level
    that best splits it in two."""
    below = cumulative.astype(np.float64)
    mass = np.cumsum(counts * _LEVELS.astype(np.float64))
    total, total_mass = below[-1], mass[-1]
    product = below * (total - below)
    between = np.divide(
        (total_mass * below - mass * total) ** 2,
        product,
        out=np.full(256, -1.0),
        where=product > 0,
    )
    return int(np.argmax(between))


def _digit_pieces(mask: np.ndarray) -> np.ndarray:
    """The mask of the digit: the largest piece of ink (preferring pieces away from the
    picture's edge, where sheet edges, shadows and the table are) and every piece that is big
    enough and close enough to belong to the same digit."""
    height, width = mask.shape
    # Labelling alone is several times cheaper than with statistics; one piece needs none.
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    if count <= 1:
        raise NoDigitFound("no digit found: the image is blank")
    if count == 2:
        if max(cv2.boundingRect(mask)[2:]) < max(2, 0.02 * max(height, width)):
            raise NoDigitFound("no digit found: only a dot or speck stands out from the background")
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    left, top, wide, high, area = (stats[1:, i].astype(np.int64) for i in range(5))
    touches_edge = (left == 0) | (top == 0) | (left + wide == width) | (top + high == height)
    frames = frame_pieces(labels, stats[1:])
    if (np.maximum(wide, high)[~frames] >= max(2, 0.02 * max(height, width))).any():
        area = np.where(frames, 0, area)  # weightless: never the seed, never joined to it
    score = area * np.where(touches_edge, 0.25, 1.0)
    seed = int(np.argmax(score))
    chosen = np.zeros(count - 1, dtype=bool)
    chosen[seed] = True
    box = [left[seed], top[seed], left[seed] + wide[seed], top[seed] + high[seed]]
    for _ in range(8):
        size = max(box[2] - box[0], box[3] - box[1])
        gap_x = np.maximum(0, np.maximum(box[0] - (left + wide), left - box[2]))
        gap_y = np.maximum(0, np.maximum(box[1] - (top + high), top - box[3]))
        gap = np.maximum(gap_x, gap_y)
        share = area / area[chosen].sum()
        near = ((share >= 0.08) & (gap <= 0.4 * size)) | ((share >= 0.015) & (gap <= 0.1 * size))
        inside = (gap == 0) & (share >= 0.002)
        new = (near | inside) & ~chosen & ~(touches_edge & (share < 0.5))
        if not new.any():
            break
        chosen |= new
        box = [
            int(left[chosen].min()),
            int(top[chosen].min()),
            int((left + wide)[chosen].max()),
            int((top + high)[chosen].max()),
        ]
    if max(box[2] - box[0], box[3] - box[1]) < max(2, 0.02 * max(height, width)):
        raise NoDigitFound("no digit found: only a dot or speck stands out from the background")
    lookup = np.concatenate([[0], chosen]).astype(np.uint8)
    keep: np.ndarray = lookup[labels].astype(np.uint8)
    return keep


def stroke_width(mask: np.ndarray) -> float:
    """2 x area / boundary pixels: the width of a stroke (exact from width 2 up)."""
    area = cv2.countNonZero(mask)
    if area == 0:
        return 0.0
    inner = cv2.erode(mask, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return 2.0 * area / max(area - cv2.countNonZero(inner), 1)


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _crop(ink: np.ndarray, keep: np.ndarray, floor: int, *, on_paper: bool) -> np.ndarray:
    """The kept pieces' ink (0..255), with their anti-aliased edge, cropped to them and scaled
    to 0..1 so the strokes' cores are 1. Thin gaps across strokes written `on_paper` are
    closed."""
    left, top, wide, high = cv2.boundingRect(keep)
    top, bottom = max(top - 2, 0), top + high + 2
    left, right = max(left - 2, 0), left + wide + 2
    kept = keep[top:bottom, left:right]
    region = cv2.dilate(kept, np.ones((5, 5), np.uint8))
    crop = ink[top:bottom, left:right] * region
    # A pen that skipped, or a crease, cuts a fat stroke with a thin gap the model reads as a
    # stroke's end: close gaps under a quarter of the stroke's width (never a loop or an open
    # 4). A drawing made on a screen has no such gaps.
    side = round(PEN_SKIP_SHARE * stroke_width(kept)) | 1 if on_paper else 1
    if side >= 3:
        window = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
        crop = cv2.morphologyEx(crop, cv2.MORPH_CLOSE, window)
    counts = np.cumsum(cv2.calcHist([crop], [0], kept, [256], [0, 256]), dtype=np.int64)
    peak = int(np.searchsorted(counts, 0.9 * counts[-1]))
    if peak < MIN_STROKE_CONTRAST * 255:
        raise NoDigitFound(
            "no digit found: nothing stands out from the paper more than its own texture does"
        )
    # Trimmed to what is above the floor first, so only that is converted to float.
    left, top, wide, high = cv2.boundingRect((crop > floor).view(np.uint8))
    level = np.uint8(floor)
    above = np.maximum(crop[top : top + high, left : left + wide], level) - level
    scaled: np.ndarray = np.minimum(
        above.astype(np.float32) * np.float32(1.0 / max(peak - floor, 1)), np.float32(1.0)
    )
    return scaled
