"""A seeded generator of captioned images for the bundled demo CLIP model.

Every image is a :class:`Scene`: one to three identical objects (same shape,
colour, fill pattern and size) placed as a group in one region of a
background. Captions state a random subset of the scene's attributes in
varied phrasing; :meth:`Caption.matches` tells whether a scene satisfies
everything a caption states, which is how retrieval is scored (a caption may
describe many images).

Grammatical number always states the count ("a red circle" means one circle),
so a caption's count is never left open.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "orange": (245, 140, 20),
    "yellow": (240, 215, 30),
    "green": (40, 165, 60),
    "blue": (35, 85, 225),
    "purple": (135, 55, 185),
    "pink": (245, 125, 195),
    "brown": (125, 75, 35),
}
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "diamond", "cross", "heart")
FILLS = ("plain", "stripes", "dots", "checks")
BACKGROUNDS = ("white", "black", "gray", "grid", "gradient")
SIZES = ("small", "large")
COUNTS = (1, 2, 3)
POSITIONS = ("center", "left", "right", "top", "bottom")
ATTRIBUTES = ("shape", "colour", "fill", "background", "size", "count", "position")

_PLURAL = {"cross": "crosses"}
_NUMBER_WORDS = {1: ("a", "one", "a single"), 2: ("two", "a pair of"), 3: ("three",)}
_SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
_FILL_ADJECTIVES = {
    "plain": ("plain", "solid"),
    "stripes": ("striped",),
    "dots": ("dotted", "spotted", "polka-dot"),
    "checks": ("checkered", "chequered"),
}
_FILL_SUFFIXES = {
    "plain": ("in a solid colour",),
    "stripes": ("with stripes",),
    "dots": ("with dots", "covered in dots"),
    "checks": ("with a checkered pattern", "with checks"),
}
_BACKGROUND_PHRASES = {
    "white": ("on a white background", "against white", "on white"),
    "black": ("on a black background", "against black", "on black"),
    "gray": ("on a gray background", "on a grey background", "against gray"),
    "grid": ("on a grid background", "on graph paper", "over a grid"),
    "gradient": ("on a gradient background", "on a shaded background"),
}
_POSITION_PHRASES = {
    "center": ("in the middle", "in the center", "in the centre"),
    "left": ("on the left", "at the left side", "on the left side"),
    "right": ("on the right", "at the right side", "on the right side"),
    "top": ("at the top", "near the top", "along the top"),
    "bottom": ("at the bottom", "near the bottom", "along the bottom"),
}
_PREFIXES = ("", "", "", "a picture of ", "an image of ", "a photo of ", "a drawing of ", "there is ")

# Probability that a caption states each optional attribute. Shape and count
# are always stated (count through grammatical number).
MENTION_PROBABILITY = {"colour": 0.85, "fill": 0.45, "background": 0.45, "size": 0.45, "position": 0.45}


@dataclass(frozen=True)
class Scene:
    """The attributes of one generated image."""

    shape: str
    colour: str
    fill: str
    background: str
    size: str
    count: int
    position: str

    def render(self, seed: int, size: int = 128) -> Image.Image:
        """Draw the scene; ``seed`` varies placement and jitter, not attributes."""
        return _render(self, random.Random(seed), size)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Caption:
    """A caption and the attributes it states."""

    text: str
    stated: dict[str, object] = field(default_factory=dict)

    def matches(self, scene: Scene) -> bool:
        return all(getattr(scene, name) == value for name, value in self.stated.items())


def noun_phrase(colour: str, shape: str, count: int) -> str:
    """The plainest caption: "a red star", "two red stars"."""
    if count == 1:
        return f"a {colour} {shape}"
    return f"{_NUMBER_WORDS[count][0]} {colour} {_PLURAL.get(shape, shape + 's')}"


def random_scene(rng: random.Random) -> Scene:
    return Scene(
        shape=rng.choice(SHAPES),
        colour=rng.choice(list(COLOURS)),
        fill=rng.choice(FILLS),
        background=rng.choice(BACKGROUNDS),
        size=rng.choice(SIZES),
        count=rng.choice(COUNTS),
        position=rng.choice(POSITIONS),
    )


def describe(scene: Scene, rng: random.Random, stated: tuple[str, ...] | None = None) -> Caption:
    """Write a natural caption for ``scene``.

    ``stated`` names the optional attributes to mention; by default each is
    mentioned with its :data:`MENTION_PROBABILITY`.
    """
    if stated is None:
        stated = tuple(name for name, p in MENTION_PROBABILITY.items() if rng.random() < p)
    facts: dict[str, object] = {"shape": scene.shape, "count": scene.count}
    noun = scene.shape if scene.count == 1 else _PLURAL.get(scene.shape, scene.shape + "s")
    adjectives: list[str] = []
    if "size" in stated:
        adjectives.append(rng.choice(_SIZE_WORDS[scene.size]))
        facts["size"] = scene.size
    if "colour" in stated:
        adjectives.append(scene.colour)
        facts["colour"] = scene.colour
    suffixes: list[str] = []
    if "fill" in stated:
        facts["fill"] = scene.fill
        if rng.random() < 0.5:
            adjectives.append(rng.choice(_FILL_ADJECTIVES[scene.fill]))
        else:
            suffixes.append(rng.choice(_FILL_SUFFIXES[scene.fill]))
    number = rng.choice(_NUMBER_WORDS[scene.count])
    if number == "a" and adjectives and adjectives[0][0] in "aeiou":
        number = "an"
    phrases: list[str] = []
    if "position" in stated:
        phrases.append(rng.choice(_POSITION_PHRASES[scene.position]))
        facts["position"] = scene.position
    if "background" in stated:
        phrases.append(rng.choice(_BACKGROUND_PHRASES[scene.background]))
        facts["background"] = scene.background
    rng.shuffle(phrases)
    words = [number, *adjectives, noun, *suffixes, *phrases]
    prefix = rng.choice(_PREFIXES)
    if prefix == "there is " and scene.count > 1:
        prefix = "there are "
    text = prefix + " ".join(words)
    if text.startswith(("a picture of a ", "an image of a ", "a photo of a ", "a drawing of a ")) and rng.random() < 0.5:
        text = text.split(" of ", 1)[1]
    return Caption(text=text, stated=facts)


# Rendering ---------------------------------------------------------------

_SUPERSAMPLE = 2


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, round(c * factor))) for c in rgb)  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _texture(colour: str, fill: str, size: int) -> Image.Image:
    """The object's fill, as a full-canvas image that the shape mask cuts out.

    Patterns use a darker shade of the same colour, so the hue (and so the
    colour name) stays that of the object.
    """
    base = COLOURS[colour]
    dark = _shade(base, 0.45)
    image = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(image)
    step = size // 16
    if fill == "stripes":
        for offset in range(-size, size, step):
            draw.line([(offset, 0), (offset + size, size)], fill=dark, width=max(1, step // 2))
    elif fill == "dots":
        radius = step * 0.3
        for y in range(step // 2, size, step):
            for x in range(step // 2, size, step):
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=dark)
    elif fill == "checks":
        for y in range(0, size, step):
            for x in range(0, size, step):
                if (x // step + y // step) % 2:
                    draw.rectangle([x, y, x + step - 1, y + step - 1], fill=dark)
    return image


@lru_cache(maxsize=32)
def _background(name: str, size: int) -> Image.Image:
    if name in ("white", "black", "gray"):
        level = {"white": 245, "black": 18, "gray": 128}[name]
        return Image.new("RGB", (size, size), (level, level, level))
    if name == "grid":
        image = Image.new("RGB", (size, size), (232, 236, 240))
        draw = ImageDraw.Draw(image)
        step = size // 10
        for i in range(0, size, step):
            draw.line([(i, 0), (i, size)], fill=(150, 160, 175), width=_SUPERSAMPLE)
            draw.line([(0, i), (size, i)], fill=(150, 160, 175), width=_SUPERSAMPLE)
        return image
    # A vertical light-to-dark gray gradient.
    gradient = Image.linear_gradient("L").resize((size, size)).point(lambda v: 225 - v * 170 // 255)
    return Image.merge("RGB", (gradient, gradient, gradient))


def _regular_polygon(sides: int, radius: float, rotation: float) -> list[tuple[float, float]]:
    return [
        (radius * math.cos(rotation + 2 * math.pi * i / sides), radius * math.sin(rotation + 2 * math.pi * i / sides))
        for i in range(sides)
    ]


def _outline(shape: str, radius: float, tilt: float) -> list[tuple[float, float]] | None:
    """Polygon points around the origin, or None for a circle."""
    up = -math.pi / 2
    if shape == "circle":
        return None
    if shape == "square":
        points = _regular_polygon(4, radius * 1.25, math.pi / 4)
    elif shape == "triangle":
        points = [(x, y + radius * 0.2) for x, y in _regular_polygon(3, radius * 1.2, up)]
    elif shape == "hexagon":
        points = _regular_polygon(6, radius * 1.05, 0)
    elif shape == "diamond":
        points = [(0, -radius * 1.2), (radius * 0.75, 0), (0, radius * 1.2), (-radius * 0.75, 0)]
    elif shape == "star":
        points = []
        for i in range(10):
            r = radius * (1.15 if i % 2 == 0 else 0.48)
            angle = up + math.pi * i / 5
            points.append((r * math.cos(angle), r * math.sin(angle)))
    elif shape == "cross":
        a, b = radius * 1.05, radius * 0.36
        points = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)]
    elif shape == "heart":
        points = []
        for i in range(48):
            t = 2 * math.pi * i / 48
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            points.append((x * radius / 15, -(y + 2) * radius / 15))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    cos, sin = math.cos(tilt), math.sin(tilt)
    return [(x * cos - y * sin, x * sin + y * cos) for x, y in points]


def _layout(scene: Scene, rng: random.Random) -> list[tuple[float, float, float]]:
    """Object centres and radii in unit coordinates.

    The group occupies a third of the canvas: a column for left/right, a row
    for top/bottom/center, split into one cell per object.
    """
    n = scene.count
    band = {"left": 1 / 6, "right": 5 / 6, "top": 1 / 6, "bottom": 5 / 6, "center": 1 / 2}[scene.position]
    vertical = scene.position in ("left", "right")
    cell = 1 / 3
    radius_scale = 0.88 if scene.size == "large" else 0.6
    objects = []
    spacing = min(1 / n, 0.36)
    start = 0.5 - spacing * (n - 1) / 2
    for i in range(n):
        along = start + spacing * i + rng.uniform(-0.02, 0.02)
        across = band + rng.uniform(-0.025, 0.025)
        radius = cell / 2 * radius_scale * rng.uniform(0.9, 1.05)
        x, y = (across, along) if vertical else (along, across)
        objects.append((x, y, radius))
    return objects


def _render(scene: Scene, rng: random.Random, size: int) -> Image.Image:
    canvas = size * _SUPERSAMPLE
    mask = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(mask)
    tilt = rng.uniform(-0.2, 0.2)
    for x, y, radius in _layout(scene, rng):
        cx, cy, r = x * canvas, y * canvas, radius * canvas
        outline = _outline(scene.shape, r, tilt)
        if outline is None:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        else:
            draw.polygon([(cx + px, cy + py) for px, py in outline], fill=255)
    image = Image.composite(_texture(scene.colour, scene.fill, canvas), _background(scene.background, canvas), mask)
    return image.resize((size, size), Image.Resampling.LANCZOS)
