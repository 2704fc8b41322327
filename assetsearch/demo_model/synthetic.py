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

import io
import math
import random
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

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

    def render(self, seed: int, size: int = 128, augment: Augmentation | None = None) -> Image.Image:
        """Draw the scene; ``seed`` varies placement and jitter, not attributes.

        ``augment``: draw it with training augmentations (:func:`render_augmented`).
        """
        if augment is not None:
            return render_augmented(self, seed, size, augment)
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


# Caption forms beside the natural sentence of :func:`describe` (training
# with ``--captions varied``): what people type into a search box.
_REQUESTS = ("i need {}", "looking for {}", "find {}", "find me {}", "i want {}", "get me {}", "need {}")
_QUESTIONS = ("is there {}?", "any {}?", "where is {}?", "{}?", "got {}?")
_PLURAL_QUESTIONS = ("are there {}?", "any {}?", "where are {}?", "{}?", "got {}?")
CAPTION_FORMS = ("natural", "keywords", "multiplier", "bare", "request", "question", "reordered")
# How often each form is drawn; natural sentences stay the most common.
CAPTION_FORM_WEIGHTS = (0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1)


def describe_varied(scene: Scene, rng: random.Random) -> Caption:
    """A caption in one of :data:`CAPTION_FORMS`, stating what it says in :attr:`Caption.stated`.

    ``keywords``: "red, star, two"; ``multiplier``: "red star x2";
    ``bare``: "red stars" (no article or number word: plural means more than
    one, so only the count of a single object is stated); ``request``: "I need
    two red stars"; ``question``: "is there a red star?"; ``reordered``: "star
    red large". (Case never matters: the tokenizer lower-cases.)
    """
    form = rng.choices(CAPTION_FORMS, CAPTION_FORM_WEIGHTS)[0]
    if form == "natural":
        return describe(scene, rng)
    if form in ("request", "question"):
        # A noun phrase without the sentence's prefix or place phrases.
        optional = tuple(name for name in ("colour", "size", "fill") if rng.random() < MENTION_PROBABILITY[name])
        phrase = describe(scene, rng, stated=optional)
        body = phrase.text.split(" of ", 1)[1] if phrase.text.startswith(("a picture of", "an image of", "a photo of", "a drawing of")) else phrase.text
        body = body.removeprefix("there is ").removeprefix("there are ")
        templates = _REQUESTS if form == "request" else _QUESTIONS if scene.count == 1 else _PLURAL_QUESTIONS
        caption = Caption(text=rng.choice(templates).format(body), stated=phrase.stated)
    else:
        stated: dict[str, object] = {"shape": scene.shape}
        words = []
        if rng.random() < 0.85:
            words.append(scene.colour)
            stated["colour"] = scene.colour
        if rng.random() < 0.3:
            words.append(rng.choice(_SIZE_WORDS[scene.size]))
            stated["size"] = scene.size
        if rng.random() < 0.3:
            words.append(rng.choice(_FILL_ADJECTIVES[scene.fill]))
            stated["fill"] = scene.fill
        plural_noun = _PLURAL.get(scene.shape, scene.shape + "s")
        if form == "keywords":
            words.append(scene.shape if scene.count == 1 else plural_noun)
            if scene.count > 1 or rng.random() < 0.5:
                words.append(_NUMBER_WORDS[scene.count][-1 if scene.count == 1 else 0])
            stated["count"] = scene.count
            rng.shuffle(words)
            text = rng.choice((", ", " ")).join(words)
        elif form == "multiplier":
            text = " ".join([*words, scene.shape]) + (f" x{scene.count}" if scene.count > 1 or rng.random() < 0.3 else "")
            stated["count"] = scene.count
        elif form == "bare":
            text = " ".join([*words, scene.shape if scene.count == 1 else plural_noun])
            if scene.count == 1:
                stated["count"] = 1
        else:  # reordered: the noun first, then the attributes in any order
            rng.shuffle(words)
            text = " ".join([scene.shape if scene.count == 1 else plural_noun, *words])
            if scene.count == 1:
                stated["count"] = 1
        caption = Caption(text=text, stated=stated)
    return caption


# One attribute alone, as a tag, a composed query's words ("a square") or a
# negative term ("red") name it: training with ``--single-attribute``.
_ONE_COLOUR = ("{c}", "something {c}", "{c} things", "anything {c}", "the {c} one", "in {c}")
_ONE_SHAPE = ("a {s}", "{s}", "a {s} shape", "{n}", "the {s}")
_ONE_COUNT = ("{w}", "{d}", "x{d}", "{w} {things}")


def describe_one_attribute(scene: Scene, attribute: str, rng: random.Random) -> Caption:
    """A caption naming only the scene's ``attribute`` ("colour", "shape" or "count"): "green", "a star", "x2"."""
    if attribute == "colour":
        return Caption(text=rng.choice(_ONE_COLOUR).format(c=scene.colour), stated={"colour": scene.colour})
    if attribute == "shape":
        plural = _PLURAL.get(scene.shape, scene.shape + "s")
        template = rng.choice(_ONE_SHAPE)
        return Caption(text=template.format(s=scene.shape, n=scene.shape if scene.count == 1 else plural), stated={"shape": scene.shape})
    if attribute == "count":
        template = rng.choice(_ONE_COUNT)
        words = {1: "one", 2: "two", 3: "three"}
        return Caption(text=template.format(w=words[scene.count], d=scene.count, things="shape" if scene.count == 1 else "shapes"),
                       stated={"count": scene.count})
    raise ValueError(f"no one-attribute caption for {attribute!r}")


# Rendering ---------------------------------------------------------------

_SUPERSAMPLE = 2


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, round(c * factor))) for c in rgb)  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _texture(base: tuple[int, int, int], fill: str, width: int, height: int) -> Image.Image:
    """The object's fill, as a full-canvas image that the shape mask cuts out.

    Patterns use a darker shade of the same colour, so the hue (and so the
    colour name) stays that of the object.
    """
    dark = _shade(base, 0.45)
    image = Image.new("RGB", (width, height), base)
    draw = ImageDraw.Draw(image)
    size = max(width, height)
    step = min(width, height) // 16
    if fill == "stripes":
        for offset in range(-size, size, step):
            draw.line([(offset, 0), (offset + size, size)], fill=dark, width=max(1, step // 2))
    elif fill == "dots":
        radius = step * 0.3
        for y in range(step // 2, height, step):
            for x in range(step // 2, width, step):
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=dark)
    elif fill == "checks":
        for y in range(0, height, step):
            for x in range(0, width, step):
                if (x // step + y // step) % 2:
                    draw.rectangle([x, y, x + step - 1, y + step - 1], fill=dark)
    return image


@lru_cache(maxsize=32)
def _background(name: str, width: int, height: int, line: int = _SUPERSAMPLE) -> Image.Image:
    if name in ("white", "black", "gray"):
        level = {"white": 245, "black": 18, "gray": 128}[name]
        return Image.new("RGB", (width, height), (level, level, level))
    if name == "grid":
        image = Image.new("RGB", (width, height), (232, 236, 240))
        draw = ImageDraw.Draw(image)
        step = min(width, height) // 10
        for i in range(0, max(width, height), step):
            draw.line([(i, 0), (i, height)], fill=(150, 160, 175), width=line)
            draw.line([(0, i), (width, i)], fill=(150, 160, 175), width=line)
        return image
    # A vertical light-to-dark gray gradient.
    gradient = Image.linear_gradient("L").resize((width, height)).point(lambda v: 225 - v * 170 // 255)
    return Image.merge("RGB", (gradient, gradient, gradient))


def _regular_polygon(sides: int, radius: float, rotation: float) -> list[tuple[float, float]]:
    return [
        (radius * math.cos(rotation + 2 * math.pi * i / sides), radius * math.sin(rotation + 2 * math.pi * i / sides))
        for i in range(sides)
    ]


# Augmentation.shape_jitter: the range each shape's proportions are drawn
# from, around the plain drawing's (in brackets), so two drawings of one shape
# differ as two people's would and the name stays true. "stretch": width over
# height, area kept (circle 1, diamond 0.625 as 0.75 / 1.2 of its radius,
# the rest 1); "inner": a star's inner over outer radius (0.42); "arm": a
# cross's arm half-width over its length (0.34).
SHAPE_FORMS: dict[str, dict[str, tuple[float, float]]] = {
    "circle": {"stretch": (0.9, 1.1)},
    "square": {"stretch": (0.9, 1.1)},
    "triangle": {"stretch": (0.8, 1.25)},
    "hexagon": {"stretch": (0.85, 1.15)},
    "diamond": {"stretch": (0.75, 1.3)},
    "star": {"inner": (0.32, 0.55)},
    "cross": {"arm": (0.22, 0.45)},
    "heart": {"stretch": (0.85, 1.15)},
}


def _random_form(shape: str, rng: random.Random) -> dict[str, float]:
    return {name: rng.uniform(low, high) for name, (low, high) in SHAPE_FORMS[shape].items()}


def _outline(shape: str, radius: float, tilt: float, form: dict[str, float] | None = None) -> list[tuple[float, float]] | None:
    """Polygon points around the origin, or None for a plain circle.

    ``form``: proportions other than the plain drawing's (:data:`SHAPE_FORMS`).
    """
    up = -math.pi / 2
    form = form or {}
    if shape == "circle":
        if not form:
            return None
        points = _regular_polygon(48, radius, 0)
    elif shape == "square":
        points = _regular_polygon(4, radius * 1.25, math.pi / 4)
    elif shape == "triangle":
        points = [(x, y + radius * 0.2) for x, y in _regular_polygon(3, radius * 1.2, up)]
    elif shape == "hexagon":
        points = _regular_polygon(6, radius * 1.05, 0)
    elif shape == "diamond":
        points = [(0, -radius * 1.2), (radius * 0.75, 0), (0, radius * 1.2), (-radius * 0.75, 0)]
    elif shape == "star":
        outer = radius * 1.15
        inner = outer * form["inner"] if "inner" in form else radius * 0.48
        points = []
        for i in range(10):
            r = outer if i % 2 == 0 else inner
            angle = up + math.pi * i / 5
            points.append((r * math.cos(angle), r * math.sin(angle)))
    elif shape == "cross":
        a = radius * 1.05
        b = a * form["arm"] if "arm" in form else radius * 0.36
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
    if "stretch" in form:
        widen = math.sqrt(form["stretch"])
        points = [(x * widen, y / widen) for x, y in points]
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
    tilt = rng.uniform(-0.2, 0.2)
    _draw_mask(mask, scene.shape, [(x * canvas, y * canvas, r * canvas) for x, y, r in _layout(scene, rng)], tilt)
    image = Image.composite(_texture(COLOURS[scene.colour], scene.fill, canvas, canvas), _background(scene.background, canvas, canvas), mask)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _draw_mask(mask: Image.Image, shape: str, objects: list[tuple[float, float, float]], tilt: float,
               form: dict[str, float] | None = None) -> None:
    """Fill each object (centre and radius in pixels) of ``shape``, in proportions ``form``, into ``mask``."""
    draw = ImageDraw.Draw(mask)
    for cx, cy, r in objects:
        outline = _outline(shape, r, tilt, form)
        if outline is None:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        else:
            draw.polygon([(cx + px, cy + py) for px, py in outline], fill=255)


# Training augmentations ----------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """How often each training augmentation applies (see :meth:`Scene.render`).

    They cover what uploads do and the plain renderer never does: any
    rotation, canvases from 1:3 to 3:1 (letterboxed to the model's square
    input, as the encoder's ``FIT`` "letterbox" does), groups cut by the border,
    colours off the palette (within their name), outlines, aliased edges,
    JPEG at quality 40-95, noise and blur.
    """

    rotate: float = 0.5  # any angle instead of a slight tilt
    aspect: float = 0.5  # a wide or tall canvas, ratio log-uniform up to MAX_ASPECT
    border_cut: float = 0.15  # an off-centre group shifted along its row until the border cuts it
    colour_jitter: int = 20  # +- per RGB channel
    outline: float = 0.2
    aliased: float = 0.25  # drawn at 1x, no anti-aliasing
    jpeg: float = 0.5
    noise: float = 0.2
    blur: float = 0.2
    # Off by default, so recipes from before them reproduce; the bundled stages 2 and 3 turn the first two on (train --scatter, --small-scale).
    scatter: float = 0.0  # objects strewn over their position's region (SCATTER_REGIONS) instead of a row
    small_scale: float = 1.0  # "small" objects drawn at this to 1x their size, as small as uploads' are
    shape_jitter: float = 0.0  # proportions drawn from SHAPE_FORMS (a cross's arms, a star's points, a stretch)
    # The letterbox padding: the demo model's mean colour, as assetsearch.clip_inputs.fit_image pads.
    pad_mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)


MAX_ASPECT = 3.0

# Where a scattered group may lie, as (x0, y0, x1, y1) of the canvas: the
# side its position names, or the middle, so the position caption stays true.
SCATTER_REGIONS = {
    "left": (0.0, 0.0, 0.4, 1.0),
    "right": (0.6, 0.0, 1.0, 1.0),
    "top": (0.0, 0.0, 1.0, 0.4),
    "bottom": (0.0, 0.6, 1.0, 1.0),
    "center": (0.15, 0.15, 0.85, 0.85),
}


def _scatter(objects: list[tuple[float, float, float]], region: tuple[float, float, float, float],
             rng: random.Random) -> list[tuple[float, float, float]] | None:
    """``objects`` (centre and radius in pixels) moved to random, untouching places in ``region``; None if they do not fit."""
    x0, y0, x1, y1 = region
    for _ in range(50):
        placed = [(rng.uniform(x0 + r, max(x0 + r, x1 - r)), rng.uniform(y0 + r, max(y0 + r, y1 - r)), r) for _, _, r in objects]
        if all(math.dist(a[:2], b[:2]) > 1.15 * (a[2] + b[2]) for i, a in enumerate(placed) for b in placed[i + 1 :]):
            return placed
    return None


def render_augmented(scene: Scene, seed: int, size: int, augment: Augmentation) -> Image.Image:
    """``scene`` drawn with :class:`Augmentation`'s variations, as a ``size`` square; reproducible by ``seed``."""
    from ..clip_inputs import fit_image

    rng = random.Random(f"augmented-{seed}")
    ratio = math.exp(rng.uniform(-math.log(MAX_ASPECT), math.log(MAX_ASPECT))) if rng.random() < augment.aspect else 1.0
    aliased = rng.random() < augment.aliased
    scale = 1 if aliased else _SUPERSAMPLE
    # The canvas's long side is what the letterbox fits to ``size``.
    long = size * scale
    width, height = (long, max(8, round(long / ratio))) if ratio >= 1 else (max(8, round(long * ratio)), long)
    short = min(width, height)
    tilt = rng.uniform(-math.pi, math.pi) if rng.random() < augment.rotate else rng.uniform(-0.2, 0.2)
    objects = [(x * width, y * height, r * short) for x, y, r in _layout(scene, rng)]
    # These draw from rng only when enabled, so recipes without them reproduce.
    if augment.small_scale < 1 and scene.size == "small":
        factor = rng.uniform(augment.small_scale, 1.0)
        objects = [(x, y, r * factor) for x, y, r in objects]
    if augment.scatter and rng.random() < augment.scatter:
        u0, v0, u1, v1 = SCATTER_REGIONS[scene.position]
        objects = _scatter(objects, (u0 * width, v0 * height, u1 * width, v1 * height), rng) or objects
    form = _random_form(scene.shape, rng) if augment.shape_jitter and rng.random() < augment.shape_jitter else None
    if scene.position != "center" and rng.random() < augment.border_cut:
        vertical = scene.position in ("left", "right")
        along = 1 if vertical else 0
        extent = height if vertical else width
        first, last = min(o[along] for o in objects), max(o[along] for o in objects)
        radius = objects[0][2]
        shift = -(first - rng.uniform(0.2, 0.6) * radius) if rng.random() < 0.5 else extent - last - rng.uniform(0.2, 0.6) * radius
        objects = [(x, y + shift, r) if vertical else (x + shift, y, r) for x, y, r in objects]
    mask = Image.new("L", (width, height), 0)
    _draw_mask(mask, scene.shape, objects, tilt, form)
    base = tuple(max(0, min(255, c + rng.randint(-augment.colour_jitter, augment.colour_jitter))) for c in COLOURS[scene.colour])
    image = Image.composite(_texture(base, scene.fill, width, height), _background(scene.background, width, height, scale), mask)  # type: ignore[arg-type]
    if rng.random() < augment.outline:
        ring = ImageChops.subtract(mask.filter(ImageFilter.MaxFilter(2 * scale + 1)), mask)
        image.paste(_shade(base, 0.25), mask=ring)  # type: ignore[arg-type]
    if scale > 1:
        image = image.resize((max(1, width // scale), max(1, height // scale)), Image.Resampling.LANCZOS)
    if rng.random() < augment.blur:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < augment.noise:
        # Seeded from rng (Pillow's effect_noise is not), so pixels follow the seed.
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(4, 12), (image.height, image.width, 1))
        image = Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < augment.jpeg:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(40, 95))
        buffer.seek(0)
        image = Image.open(buffer).convert("RGB")
    config = {"size": size, "mean": augment.pad_mean, "interpolation": "bicubic"}
    image = fit_image(image, "letterbox", config)
    return image if image.size == (size, size) else image.resize((size, size), Image.Resampling.BICUBIC)
