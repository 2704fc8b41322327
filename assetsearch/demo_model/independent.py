"""An evaluation renderer written apart from the training generator.

The demo model is trained on :mod:`assetsearch.demo_model.synthetic`; figures
measured on more images from that generator say how well it learnt that
generator, not how it meets images drawn some other way. This module draws the
same vocabulary (colour names, shape names, counts) with none of that code:

* shapes are rasterised here from implicit equations and a NumPy point-in-polygon
  test (the generator draws Pillow polygons at twice the size and downsamples),
  with or without anti-aliasing, some with a dark outline, at any rotation;
* colours are taken from several anchors per name with per-channel jitter
  (off the generator's palette), fills are horizontal stripes, dots or checks
  of other sizes, backgrounds include tinted, noisy and horizontal gradients;
* canvases are 96-480 pixels on the short side, square or 1.5:1 to 3:1 wide or
  tall; objects are large or small, anywhere in a square image and either in
  the middle square or in one end of a non-square one;
* each image is kept as PNG, or stored as JPEG at quality 40-95, or degraded
  (JPEG plus noise and blur);
* queries use phrasings the training captions never use
  (:data:`FREE_TEMPLATES`: digits, "in red", "show me", "do you have", ...).

Every item records its conditions (rotation, aspect, placement, size, format,
edges), so figures can be read by condition. Seeded: the same seed gives the
same images and queries.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from .synthetic import COLOURS, SHAPES

# Several anchors per colour name, none the generator's RGB; each draw jitters
# every channel by up to COLOUR_JITTER.
COLOUR_ANCHORS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "red": ((232, 22, 22), (190, 28, 45), (250, 62, 48)),
    "orange": ((255, 150, 0), (232, 118, 42), (248, 165, 62)),
    "yellow": ((255, 228, 0), (236, 204, 44), (250, 238, 92)),
    "green": ((32, 150, 52), (72, 188, 70), (22, 122, 62)),
    "blue": ((22, 72, 200), (52, 112, 238), (32, 58, 168)),
    "purple": ((122, 42, 170), (150, 72, 200), (100, 32, 140)),
    "pink": ((255, 105, 180), (240, 140, 200), (250, 120, 168)),
    "brown": ((140, 86, 40), (110, 66, 30), (160, 100, 56)),
}
COLOUR_JITTER = 14
ASPECTS = ("square", "wide", "tall")
FORMATS = ("png", "jpeg", "degraded")
FILLS = ("plain", "plain", "hstripes", "dots", "checks")
BACKGROUNDS = ("white", "black", "gray", "tinted", "noise", "hgradient")
CONDITIONS = ("rotation", "aspect", "placement", "size", "format", "edges")

_NUMBER = {1: "one", 2: "two", 3: "three"}
_PLURALS = {"cross": "crosses"}

# Query phrasings no training caption uses: {n} a digit, {number} a word,
# {noun} singular or plural as the count needs, {article} "a"/"an" or the number.
FREE_TEMPLATES = (
    "{n} {colour} {noun}",
    "{number} {noun} in {colour}",
    "show me {article} {colour} {noun}",
    "do you have {article} {colour} {noun}",
    "{article} {noun} coloured {colour}",
    "{colour}-coloured {noun}, {n} of them",
    "{noun} ({colour}, {n})",
    "searching for {article} {colour} {noun}",
    "clipart: {n} {colour} {noun}",
    "{article} {colour} {noun} icon",
)


@dataclass(frozen=True)
class Item:
    """One rendered image: what it shows, how it was drawn, and the decoded pixels."""

    colour: str
    shape: str
    count: int
    conditions: dict[str, str]
    image: Image.Image = field(compare=False, repr=False)

    def matches(self, colour: str, shape: str, count: int) -> bool:
        return (self.colour, self.shape, self.count) == (colour, shape, count)


def plural(shape: str) -> str:
    return _PLURALS.get(shape, shape + "s")


def readme_query(colour: str, shape: str, count: int) -> str:
    """The README's phrasing: "a red star", "an orange star", "two red stars"."""
    return f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}" if count == 1 else f"{_NUMBER[count]} {colour} {plural(shape)}"


def free_query(colour: str, shape: str, count: int, rng: random.Random) -> str:
    """A phrasing from :data:`FREE_TEMPLATES` for the same three facts."""
    noun = shape if count == 1 else plural(shape)
    article = ("an" if colour[0] in "aeiou" else "a") if count == 1 else _NUMBER[count]
    template = rng.choice(FREE_TEMPLATES)
    return template.format(n=count, number=_NUMBER[count], colour=colour, noun=noun, article=article)


# Geometry -----------------------------------------------------------------


def _star(points: int = 5, inner: float = 0.42) -> np.ndarray:
    angles = -math.pi / 2 + np.arange(2 * points) * math.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _regular(sides: int, first: float) -> np.ndarray:
    angles = first + np.arange(sides) * 2 * math.pi / sides
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


_POLYGONS = {
    "triangle": _regular(3, -math.pi / 2) + np.array([0.0, 0.2]),
    "hexagon": _regular(6, math.pi / 6) * 0.95,
    "star": _star(),
}


def _inside_polygon(x: np.ndarray, y: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over the points."""
    inside = np.zeros(x.shape, dtype=bool)
    x0, y0 = polygon[-1]
    for x1, y1 in polygon:
        crosses = (y1 > y) != (y0 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = (x0 - x1) * (y - y1) / (y0 - y1) + x1
        inside ^= crosses & (x < at)
        x0, y0 = x1, y1
    return inside


def inside_shape(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether object-local points (unit radius, y down) fall inside ``shape``."""
    if shape == "circle":
        return u * u + v * v <= 0.92
    if shape == "square":
        return np.maximum(abs(u), abs(v)) <= 0.76
    if shape == "diamond":
        return abs(u) / 0.62 + abs(v) <= 1.0
    if shape == "cross":
        arm = 0.3
        return ((abs(u) <= arm) & (abs(v) <= 0.95)) | ((abs(v) <= arm) & (abs(u) <= 0.95))
    if shape == "heart":
        # (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y up, scaled to the unit radius.
        x, y = u * 1.2, -(v * 1.2) + 0.15
        return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0
    return _inside_polygon(u, v, _POLYGONS[shape])


# Rendering ----------------------------------------------------------------


def _jittered(colour: str, rng: random.Random) -> np.ndarray:
    anchor = rng.choice(COLOUR_ANCHORS[colour])
    return np.clip([c + rng.randint(-COLOUR_JITTER, COLOUR_JITTER) for c in anchor], 0, 255).astype(np.float32)


def _background(kind: str, width: int, height: int, rng: random.Random) -> np.ndarray:
    if kind == "white":
        return np.full((height, width, 3), rng.uniform(232, 255), np.float32)
    if kind == "black":
        return np.full((height, width, 3), rng.uniform(0, 32), np.float32)
    if kind == "gray":
        return np.full((height, width, 3), rng.uniform(100, 165), np.float32)
    if kind == "tinted":  # a pale, barely saturated tint: off-white, not a colour name
        base = np.array([rng.uniform(215, 245) for _ in range(3)], np.float32)
        return np.broadcast_to(base, (height, width, 3)).copy()
    if kind == "noise":
        level = rng.uniform(90, 200)
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 18, (height, width, 1))
        return np.clip(level + noise, 0, 255).repeat(3, axis=2).astype(np.float32)
    left, right = rng.uniform(20, 235), rng.uniform(20, 235)
    ramp = np.linspace(left, right, width, dtype=np.float32)
    return np.broadcast_to(ramp[None, :, None], (height, width, 3)).copy()


def _fill(kind: str, colour: np.ndarray, x: np.ndarray, y: np.ndarray, period: float) -> np.ndarray:
    """Per-pixel colours of an object's fill; patterns use a darker shade of the colour."""
    if kind == "plain":
        pattern = np.zeros(x.shape, dtype=bool)
    elif kind == "hstripes":
        pattern = (y // period) % 2 == 0
    elif kind == "dots":
        pattern = ((x % period - period / 2) ** 2 + (y % period - period / 2) ** 2) <= (period * 0.28) ** 2
    else:
        pattern = ((x // period) + (y // period)) % 2 == 0
    return np.where(pattern[..., None], colour * 0.55, colour)


def _place(count: int, radius: float, box: tuple[float, float, float, float], rng: random.Random) -> list[tuple[float, float]]:
    """Centres for ``count`` objects of ``radius`` inside ``box`` (x0, y0, x1, y1), not touching."""
    x0, y0, x1, y1 = box
    for _ in range(400):
        centres = [(rng.uniform(x0 + radius, max(x0 + radius, x1 - radius)), rng.uniform(y0 + radius, max(y0 + radius, y1 - radius)))
                   for _ in range(count)]
        if all(math.dist(a, b) > 2.15 * radius for i, a in enumerate(centres) for b in centres[i + 1 :]):
            return centres
    raise ValueError("no room")


def _draw(canvas: np.ndarray, shape: str, colour: np.ndarray, fill: str, outline: bool, centre: tuple[float, float],
          radius: float, angle: float, supersample: int) -> None:
    height, width, _ = canvas.shape
    cx, cy = centre
    reach = radius * 1.15
    left, right = max(0, int(cx - reach)), min(width, int(math.ceil(cx + reach)) + 1)
    top, bottom = max(0, int(cy - reach)), min(height, int(math.ceil(cy + reach)) + 1)
    if left >= right or top >= bottom:
        return
    offsets = (np.arange(supersample) + 0.5) / supersample
    xs = (np.arange(left, right)[:, None] + offsets[None, :]).ravel()
    ys = (np.arange(top, bottom)[:, None] + offsets[None, :]).ravel()
    x, y = np.meshgrid(xs, ys)
    cos, sin = math.cos(angle), math.sin(angle)
    u = ((x - cx) * cos + (y - cy) * sin) / radius
    v = (-(x - cx) * sin + (y - cy) * cos) / radius
    body = inside_shape(shape, u, v)
    rgb = _fill(fill, colour, x, y, period=max(3.0, radius / 3))
    if outline:
        ring = inside_shape(shape, u / 1.1, v / 1.1) & ~body
        body = body | ring
        rgb = np.where(ring[..., None], np.float32(25), rgb)

    def pool(values: np.ndarray) -> np.ndarray:
        h, w = bottom - top, right - left
        return values.reshape(h, supersample, w, supersample, -1).mean(axis=(1, 3))

    coverage = pool(body[..., None].astype(np.float32))
    colour_avg = pool(rgb * body[..., None]) / np.maximum(coverage, 1e-6)
    region = canvas[top:bottom, left:right]
    region[:] = region * (1 - coverage) + colour_avg * coverage


def render_item(colour: str, shape: str, count: int, rng: random.Random, conditions: dict[str, str] | None = None) -> Item:
    """Draw one item; ``conditions`` fixes some of :data:`CONDITIONS`, the rest are drawn from ``rng``."""
    chosen = dict(conditions or {})
    aspect = chosen.setdefault("aspect", rng.choice(ASPECTS))
    short = rng.randint(96, 480)
    ratio = 1.0 if aspect == "square" else rng.uniform(1.5, 3.0)
    width, height = (short, short) if aspect == "square" else (
        (round(short * ratio), short) if aspect == "wide" else (short, round(short * ratio)))
    placement = chosen.setdefault("placement", "anywhere" if aspect == "square" else rng.choice(("middle", "end")))
    size = chosen.setdefault("size", rng.choice(("large", "small")))
    rotation = chosen.setdefault("rotation", rng.choice(("upright", "rotated")))
    fmt = chosen.setdefault("format", rng.choice(FORMATS))
    edges = chosen.setdefault("edges", rng.choice(("smooth", "aliased")))
    if aspect != "square":
        chosen["ratio"] = "3:1" if ratio >= 2.5 else "2:1" if ratio >= 1.75 else "1.5:1"

    radius = short * (rng.uniform(0.12, 0.17) if size == "large" else rng.uniform(0.05, 0.075))
    if size == "large" and count == 3:
        radius *= 0.85
    long = max(width, height)
    if placement == "anywhere":
        box = (0.0, 0.0, float(width), float(height))
    elif placement == "middle":  # inside the centre square a centre crop keeps
        start = (long - short) / 2
        box = (start, 0.0, start + short, float(height)) if aspect == "wide" else (0.0, start, float(width), start + short)
    else:  # wholly outside the centre square, at one end
        end = (long - short) / 2
        span = (0.0, end) if rng.random() < 0.5 else (long - end, float(long))
        box = (span[0], 0.0, span[1], float(height)) if aspect == "wide" else (0.0, span[0], float(width), span[1])
    margin = short * 0.02
    box = (box[0] + margin, box[1] + margin, box[2] - margin, box[3] - margin)
    while True:
        try:
            centres = _place(count, radius * 1.12, box, rng)
            break
        except ValueError:
            radius *= 0.9

    canvas = _background(rng.choice(BACKGROUNDS), width, height, rng)
    paint = _jittered(colour, rng)
    fill = rng.choice(FILLS)
    outline = rng.random() < 0.25
    base_angle = rng.uniform(-8, 8) if rotation == "upright" else rng.choice((-1, 1)) * rng.uniform(20, 70)
    supersample = 3 if edges == "smooth" else 1
    for centre in centres:
        angle = math.radians(base_angle + rng.uniform(-4, 4))
        _draw(canvas, shape, paint, fill, outline, centre, radius, angle, supersample)
    image = Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8), "RGB")
    image = _encode(image, fmt, rng)
    return Item(colour, shape, count, chosen, image)


def _encode(image: Image.Image, fmt: str, rng: random.Random) -> Image.Image:
    """The image as a site would store it: PNG as is, or through a JPEG file."""
    if fmt == "png":
        return image
    if fmt == "degraded":
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(3, 9), (image.height, image.width, 3))
        image = Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8), "RGB")
    return _through_jpeg(image, rng.randint(40, 95))


def _through_jpeg(image: Image.Image, quality: int) -> Image.Image:
    """``image`` saved as a JPEG file at ``quality`` and decoded again."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def make_catalogue(count: int, seed: int = 0) -> list[Item]:
    """``count`` items with colour, shape, count and conditions drawn at random from ``seed``."""
    rng = random.Random(f"independent-{seed}")
    return [render_item(rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.randint(1, 3), rng) for _ in range(count)]


# Near-duplicates ------------------------------------------------------------


def reencoded(image: Image.Image) -> Image.Image:
    """A copy saved again as JPEG at quality 60."""
    return _through_jpeg(image.convert("RGB"), 60)


def halved(image: Image.Image) -> Image.Image:
    """A copy at half the size."""
    return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BICUBIC)


def trimmed(image: Image.Image, share: float = 0.05) -> Image.Image:
    """A copy with ``share`` of each side cropped away."""
    width, height = image.size
    return image.crop((round(width * share), round(height * share), round(width * (1 - share)), round(height * (1 - share))))


# The copies a near-duplicate search must find (issue #20): re-encoded, resized, lightly cropped.
COPY_EDITS = {"reencoded": reencoded, "resized": halved, "cropped": trimmed}
