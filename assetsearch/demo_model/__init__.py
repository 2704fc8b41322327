"""The bundled demo CLIP model: a small open_clip model trained on synthetic images.

It knows coloured shapes, fill patterns, backgrounds, counts and positions
(see :mod:`assetsearch.demo_model.synthetic`), nothing about real photos. It
exists so that the app can be demonstrated and tested offline through the same
open_clip code path a production model (e.g. ViT-B-32 / laion2b_s34b_b79k)
uses::

    register_model_config()
    open_clip.create_model_and_transforms(MODEL_NAME, pretrained=str(CHECKPOINT_PATH))

Train it with ``python -m assetsearch.demo_model.train`` and evaluate it with
``python -m assetsearch.demo_model.evaluate``.
"""

from __future__ import annotations

from pathlib import Path

MODEL_NAME = "assetsearch-demo"
PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE_DIR / "model_configs"
CHECKPOINT_PATH = PACKAGE_DIR / "assetsearch-demo.pt"
# How the checkpoint reads non-square images best: the encoders' FIT "auto"
# for this model. Measured against centre-crop and letterbox on the
# independent renderer (README "The model"): tiles read colour as well as
# letterbox (0.977 against 0.976) and shape best (0.886 against 0.779),
# retrieve about as well (R@5 0.997 against 1.000), read objects at the
# ends and in the middle alike, and serve query by image (0.82 against
# 0.72 on 400 images) and composed queries better; letterbox is one model
# call and counts better (0.964 against 0.820).
FIT = "tiles"


def labels() -> list[str]:
    """What the checkpoint knows, one phrase per colour and shape ("a red triangle"): the encoders' LABELS "auto".

    A moderation concept without counter-prompts is weighed against the
    labels nearest its prompts (:mod:`assetsearch.lookalikes`); these are
    the look-alikes this model tells apart.
    """
    from .synthetic import COLOURS, SHAPES, noun_phrase

    return [noun_phrase(colour, shape, 1) for colour in COLOURS for shape in SHAPES]

_registered = False


def register_model_config() -> None:
    """Make the demo model's architecture known to open_clip (idempotent)."""
    global _registered
    if _registered:
        return
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)
    _registered = True
