"""Evaluate the bundled demo model on a held-out generated set.

    python -m assetsearch.demo_model.evaluate [--images 1000] [--checkpoint PATH]

Metrics:

* text->image Recall@1/5/10: one caption per held-out image; a hit is any
  returned image that satisfies every attribute the caption states;
* zero-shot colour and shape accuracy: CLIP's zero-shot classifier over the
  joint label space (every colour x shape x count phrase, "a red circle",
  "two red stars", ...), reading the asked attribute off the best label;
* image->image: two renderings of one scene are nearer each other than to a
  rendering that differs in colour or shape.

Held-out images come from seeds that training never uses.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from . import CHECKPOINT_PATH, MODEL_NAME, register_model_config
from .synthetic import COLOURS, SHAPES, Scene, describe, noun_phrase, random_scene

HELDOUT_SEED_OFFSET = 1_000_000_000  # image seeds >= this are never used in training


@dataclass
class Heldout:
    scenes: list[Scene]
    images: list  # PIL images


def make_heldout(count: int, seed: int = 0) -> Heldout:
    rng = random.Random(f"heldout-{seed}")
    scenes = [random_scene(rng) for _ in range(count)]
    images = [scene.render(HELDOUT_SEED_OFFSET + seed * count + i) for i, scene in enumerate(scenes)]
    return Heldout(scenes, images)


def load_model(checkpoint: str | None = None, model_name: str = MODEL_NAME):
    import open_clip

    register_model_config()
    model, _, preprocess = open_clip.create_model_and_transforms(
        model_name, pretrained=str(checkpoint or CHECKPOINT_PATH)
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(model_name)


@torch.inference_mode()
def embed_images(model, preprocess, images: Sequence, batch_size: int = 128) -> np.ndarray:
    out = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([preprocess(image) for image in images[start : start + batch_size]])
        out.append(model.encode_image(batch, normalize=True).float())
    return torch.cat(out).numpy()


@torch.inference_mode()
def embed_texts(model, tokenizer, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    out = []
    for start in range(0, len(texts), batch_size):
        out.append(model.encode_text(tokenizer(list(texts[start : start + batch_size])), normalize=True).float())
    return torch.cat(out).numpy()


def zero_shot_labels(model, tokenizer, image_vectors: np.ndarray) -> list[tuple[str, str, int]]:
    """The best (colour, shape, count) label of each image among all phrases."""
    labels = [(c, s, n) for c in COLOURS for s in SHAPES for n in (1, 2, 3)]
    texts = [noun_phrase(c, s, n) for c, s, n in labels]
    best = (image_vectors @ embed_texts(model, tokenizer, texts).T).argmax(axis=1)
    return [labels[i] for i in best]


def evaluate(model, preprocess, tokenizer, heldout: Heldout, seed: int = 0) -> dict[str, float]:
    rng = random.Random(f"captions-{seed}")
    image_vectors = embed_images(model, preprocess, heldout.images)

    captions = [describe(scene, rng) for scene in heldout.scenes]
    text_vectors = embed_texts(model, tokenizer, [c.text for c in captions])
    ranking = np.argsort(-(text_vectors @ image_vectors.T), axis=1)[:, :10]
    hits = np.array([[captions[q].matches(heldout.scenes[i]) for i in row] for q, row in enumerate(ranking)])
    recall = {f"text_image_R@{k}": float(hits[:, :k].any(axis=1).mean()) for k in (1, 5, 10)}

    predicted = zero_shot_labels(model, tokenizer, image_vectors)
    colour_acc = float(np.mean([label[0] == s.colour for label, s in zip(predicted, heldout.scenes)]))
    shape_acc = float(np.mean([label[1] == s.shape for label, s in zip(predicted, heldout.scenes)]))

    triples = image_triples(model, preprocess, count=200, seed=seed)
    return {**recall, "colour_accuracy": colour_acc, "shape_accuracy": shape_acc, "image_triples": triples}


def image_triples(model, preprocess, count: int = 200, seed: int = 0) -> float:
    """Share of triples where two renderings of a scene beat a changed scene."""
    rng = random.Random(f"triples-{seed}")
    images = []
    for i in range(count):
        scene = random_scene(rng)
        if rng.random() < 0.5:
            other = replace(scene, colour=rng.choice([c for c in COLOURS if c != scene.colour]))
        else:
            other = replace(scene, shape=rng.choice([s for s in SHAPES if s != scene.shape]))
        base = HELDOUT_SEED_OFFSET * 2 + 3 * i
        images += [scene.render(base), scene.render(base + 1), other.render(base + 2)]
    vectors = embed_images(model, preprocess, images).reshape(count, 3, -1)
    same = (vectors[:, 0] * vectors[:, 1]).sum(axis=1)
    changed = (vectors[:, 0] * vectors[:, 2]).sum(axis=1)
    return float((same > changed).mean())


TARGETS = {"text_image_R@5": 0.80, "colour_accuracy": 0.95, "shape_accuracy": 0.90, "image_triples": 0.95}


def format_table(metrics: dict[str, float]) -> str:
    lines = ["| metric | value | target |", "|---|---|---|"]
    for name, value in metrics.items():
        target = TARGETS.get(name)
        lines.append(f"| {name} | {value:.3f} | {'>= %.2f' % target if target else ''} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000, help="held-out images (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="default: the bundled checkpoint")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    model, preprocess, tokenizer = load_model(args.checkpoint)
    metrics = evaluate(model, preprocess, tokenizer, make_heldout(args.images, args.seed), args.seed)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_table(metrics))
        print(f"({args.images} held-out images, {time.perf_counter() - started:.1f} s)")
    return 0 if all(metrics[k] >= v for k, v in TARGETS.items()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
