"""Evaluate the bundled demo model on a held-out generated set.

    python -m assetsearch.demo_model.evaluate [--images 1000] [--checkpoint PATH]
    python -m assetsearch.demo_model.evaluate --renderer independent [--fit all] [--queries]

``--renderer training`` (the default) draws held-out images with the
training generator; ``--renderer independent`` with
:mod:`assetsearch.demo_model.independent`, drawn by other code, and reports
each figure by condition (rotation, aspect, placement, size, format, edges).
``--fit`` is how non-square images are fitted to the model's input
(``letterbox``, ``centre-crop``, ``tiles`` or ``all`` to compare; default the encoder
setting's default).

Metrics:

* text->image Recall@1/5/10: one caption per held-out image; a hit is any
  returned image that satisfies every attribute the caption states;
* zero-shot colour and shape accuracy: CLIP's zero-shot classifier over the
  joint label space (every colour x shape x count phrase, "a red circle",
  "two red stars", ...), reading the asked attribute off the best label;
* image->image: two renderings of one scene are nearer each other than to a
  rendering that differs in colour or shape.

On the independent renderer: zero-shot colour, shape and count accuracy, and
text->image R@1/R@5 with the README's phrasing ("a red star", "two red
stars") and with free phrasing (:data:`independent.FREE_TEMPLATES`), a hit
being an image of that colour, shape and count. Under the table, the
zero-shot shape and count confusion tables (which label each true one was
read as) show what a shortfall is made of.

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

from ..catalogue import CatalogueStats, background_logits, composed_match, composed_vector
from ..clip_inputs import AUTO_FIT, FIT_MODES, fit_all, pool_views
from ..conf import DEFAULTS
from ..constants import DEFAULT_NEGATIVE_WEIGHT
from ..copies import Picture, copy_difference
from ..lookalikes import lookalike_labels
from . import CHECKPOINT_PATH, FIT, MODEL_NAME, independent, register_model_config
from . import labels as demo_labels
from .synthetic import COLOURS, SHAPES, Scene, describe, noun_phrase, random_scene

HELDOUT_SEED_OFFSET = 1_000_000_000  # image seeds >= this are never used in training
# Composed and negative-term cases evaluate_queries draws of each kind. 30, the issue's, moved a share by
# 0.1 from one sample to the next (stage 8, seed 0: 0.77 under one tile pooling, 0.67 under another whose
# 200-case figure was 0.05 higher).
QUERY_CASES = 200
# The fewest images of a colour and shape that evaluate_queries scores as a moderation concept of its own
# (precision and recall of fewer say little).
MIN_CONCEPT_IMAGES = 5


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


def default_fit() -> str:
    """The fit the encoder setting's default (``"auto"``) gives the bundled model."""
    fit = DEFAULTS["ENCODERS"]["default"]["FIT"]
    return FIT if fit == AUTO_FIT else fit


@torch.inference_mode()
def embed_images(model, preprocess, images: Sequence, batch_size: int = 128, fit: str | None = None) -> np.ndarray:
    """Unit vectors of ``images``, each fitted as the encoder's ``FIT`` does (default: its default)."""
    fit = fit or default_fit()
    config = model.visual.preprocess_cfg
    pictures, counts = fit_all(images, fit, config)
    out = []
    for start in range(0, len(pictures), batch_size):
        batch = torch.stack([preprocess(picture) for picture in pictures[start : start + batch_size]])
        out.append(model.encode_image(batch, normalize=True).float())
    return pool_views(torch.cat(out).numpy(), counts)


@torch.inference_mode()
def embed_texts(model, tokenizer, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    out = []
    for start in range(0, len(texts), batch_size):
        out.append(model.encode_text(tokenizer(list(texts[start : start + batch_size])), normalize=True).float())
    return torch.cat(out).numpy()


def zero_shot_labels(model, tokenizer, image_vectors: np.ndarray) -> list[tuple[str, str, int]]:
    # Phrased as the README does; independent.readme_query is the same phrase, written apart.
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
# Issue targets on the independent renderer.
INDEPENDENT_TARGETS = {"colour": 0.95, "shape": 0.85, "count": 0.80, "readme_R@5": 0.90, "free_R@5": 0.80}
INDEPENDENT_METRICS = ("colour", "shape", "count", "readme_R@1", "readme_R@5", "free_R@1", "free_R@5")


def _recall_hits(query_vectors: np.ndarray, image_vectors: np.ndarray, items: list[independent.Item],
                 facts: list[tuple[str, str, int]], k: int) -> np.ndarray:
    """(N, k) booleans: whether the j-th image returned for query i shows query i's facts."""
    ranking = np.argsort(-(query_vectors @ image_vectors.T), axis=1)[:, :k]
    return np.array([[items[j].matches(*facts[i]) for j in row] for i, row in enumerate(ranking)])


def evaluate_independent(model, tokenizer, preprocess, items: list[independent.Item], *, fit: str | None = None,
                         seed: int = 0) -> dict:
    """Per-item outcomes of the independent renderer's measures, and their means overall and by condition.

    Each item asks one README-phrased and one freely phrased query for its own
    colour, shape and count; its retrieval figures are those queries'.
    """
    image_vectors = embed_images(model, preprocess, [item.image for item in items], fit=fit)
    predicted = zero_shot_labels(model, tokenizer, image_vectors)
    facts = [(item.colour, item.shape, item.count) for item in items]
    rng = random.Random(f"independent-queries-{seed}")
    outcomes: dict[str, np.ndarray] = {
        "colour": np.array([p[0] == f[0] for p, f in zip(predicted, facts)]),
        "shape": np.array([p[1] == f[1] for p, f in zip(predicted, facts)]),
        "count": np.array([p[2] == f[2] for p, f in zip(predicted, facts)]),
    }
    for name, texts in (("readme", [independent.readme_query(*f) for f in facts]),
                        ("free", [independent.free_query(*f, rng) for f in facts])):
        hits = _recall_hits(embed_texts(model, tokenizer, texts), image_vectors, items, facts, 5)
        outcomes[f"{name}_R@1"] = hits[:, 0]
        outcomes[f"{name}_R@5"] = hits.any(axis=1)
    overall = {name: float(values.mean()) for name, values in outcomes.items()}
    by_condition: dict[str, dict[str, dict[str, float]]] = {}
    for condition in (*independent.CONDITIONS, "ratio"):
        for value in sorted({item.conditions.get(condition) for item in items} - {None}):
            mask = np.array([item.conditions.get(condition) == value for item in items])
            row = {name: float(values[mask].mean()) for name, values in outcomes.items()}
            by_condition.setdefault(condition, {})[value] = {"n": int(mask.sum()), **row}
    confusions = {attribute: confusion([f[axis] for f in facts], [p[axis] for p in predicted], labels)
                  for axis, (attribute, labels) in enumerate(CONFUSION_LABELS.items())}
    return {"fit": fit or default_fit(), "images": len(items), "overall": overall, "by_condition": by_condition,
            "ends": ends_gap(items, outcomes["colour"]), "confusion": confusions}


# What each axis of a zero-shot label is read as, in zero_shot_labels' order.
CONFUSION_LABELS = {"colour": COLOURS, "shape": SHAPES, "count": (1, 2, 3)}


def confusion(truth: Sequence, predicted: Sequence, labels: Sequence) -> dict[str, dict[str, int]]:
    """How often each true label (rows) was read as each label (columns), every cell present.

    Keys are strings so that the table survives JSON as it is.
    """
    table = {str(row): {str(column): 0 for column in labels} for row in labels}
    for true, read in zip(truth, predicted, strict=True):
        table[str(true)][str(read)] += 1
    return table


def format_confusion(attribute: str, table: dict[str, dict[str, int]]) -> str:
    """A Markdown table of :func:`confusion`, with each row's accuracy."""
    columns = list(table)
    lines = [f"| {attribute}: true \\ read | " + " | ".join(columns) + " | accuracy |", "|---" * (len(columns) + 2) + "|"]
    for row, cells in table.items():
        total = sum(cells.values())
        accuracy = f"{cells[row] / total:.2f}" if total else ""
        lines.append(f"| {row} | " + " | ".join(str(cells[column]) for column in columns) + f" | {accuracy} |")
    return "\n".join(lines)


def ends_gap(items: list[independent.Item], colour_ok: np.ndarray) -> dict[str, float]:
    """Colour accuracy of objects at an end of a 2:1-3:1 image against objects in its middle square."""
    def accuracy(placement: str) -> float:
        mask = np.array([i.conditions.get("placement") == placement and i.conditions.get("ratio") in ("2:1", "3:1") for i in items])
        return float(colour_ok[mask].mean()) if mask.any() else float("nan")

    return {"colour_end": accuracy("end"), "colour_middle": accuracy("middle")}


def evaluate_queries(model, tokenizer, preprocess, items: list[independent.Item], *, fit: str | None = None,
                     cases: int = QUERY_CASES, seed: int = 0, copies: int = 100,
                     concept_images: int = MIN_CONCEPT_IMAGES) -> dict[str, float]:
    """The other query modes on ``items``, computed as the product computes them over stored vectors.

    Composed image + text (candidates by the spread-weighted sum, ordered
    by the capped match, as :func:`assetsearch.search.search`): image + "a
    <shape>" and image + "<colour>" should put that colour and shape first;
    negative terms: "a <shape>" without "<colour>" (the default negative
    weight) should keep that colour out of the top 5 and that shape in it;
    query by image: the nearest other image has the same colour and shape;
    moderation (softmax over the concept, its counter-prompts and the
    catalogue background at the model's temperature, threshold 0.5, as
    :mod:`assetsearch.moderation`) for "a red triangle" with the
    counter-prompts a concept without any gets (``default``: the
    ``MODERATION_LOOKALIKES`` labels nearest it,
    :mod:`assetsearch.lookalikes`), with the neutral counter-prompts, and
    with its look-alikes written out ("a blue triangle", "a red star", ...),
    and the mean precision and recall of each way over every
    colour and shape with at least ``concept_images`` images, each as a
    concept (one concept can be an easy one); near-duplicates as
    :mod:`assetsearch.duplicates` finds them (candidates at the default
    threshold, confirmed on pixels at the default tolerance by
    :mod:`assetsearch.copies`): pairs of distinct images that are candidates
    and that are listed, and the share of each kind of copy
    (:data:`independent.COPY_EDITS`) of the first ``copies`` images found,
    with the lowest similarity and the highest pixel difference of a copy
    and the highest similarity and lowest pixel difference of two distinct
    images (the margins either side of the threshold and the tolerance).
    """
    vectors = embed_images(model, preprocess, [item.image for item in items], fit=fit)
    stats = CatalogueStats.from_vectors(vectors)
    facts = [(item.colour, item.shape) for item in items]
    # Every phrase the queries below use, embedded in one batch.
    neutral = list(DEFAULTS["MODERATION_NEUTRAL_PROMPTS"])
    phrases = [*COLOURS, *(f"a {s}" for s in SHAPES), *(f"a {c} {s}" for c in COLOURS for s in SHAPES), *neutral]
    phrase = dict(zip(phrases, embed_texts(model, tokenizer, phrases)))

    def nearest_other(query: np.ndarray, index: int) -> int:
        scores = vectors @ query
        scores[index] = -np.inf
        return int(np.argmax(scores))

    def composed_ranking(parts: dict[str, np.ndarray], weights: dict[str, float], exclude: int | None = None) -> np.ndarray:
        # As search() does: the COMPOSE_CANDIDATES nearest to the spread-weighted sum, ordered by the capped match.
        query = composed_vector(parts, weights, stats)
        scores = vectors @ (query / np.linalg.norm(query))
        if exclude is not None:
            scores[exclude] = -np.inf
        candidates = np.argsort(-scores, kind="stable")[: DEFAULTS["COMPOSE_CANDIDATES"]]
        match = composed_match(
            {name: vectors[candidates] @ part for name, part in parts.items()}, parts, weights, stats, cap=DEFAULTS["COMPOSE_PART_CAP"],
        )
        return candidates[np.argsort(-match, kind="stable")]

    rng = random.Random(f"queries-{seed}")
    composed = {"shape": [], "colour": []}
    for change, hits in composed.items():
        while len(hits) < cases:
            index = rng.randrange(len(items))
            colour, shape = facts[index]
            if change == "shape":
                shape = rng.choice([s for s in SHAPES if s != shape])
                text = f"a {shape}"
            else:
                colour = rng.choice([c for c in COLOURS if c != colour])
                text = colour
            if (colour, shape) not in facts:
                continue
            first = composed_ranking({"image": vectors[index], "text": phrase[text]}, {"image": 1.0, "text": 1.0}, exclude=index)[0]
            hits.append(facts[first] == (colour, shape))
    # Negative terms, where the catalogue holds the shape in the avoided colour and in at least five others.
    pairs = sorted({f for f in facts if sum(s == f[1] and c != f[0] for c, s in facts) >= 5})
    avoided_out, on_topic = [], []
    for colour, shape in rng.sample(pairs, min(cases, len(pairs))):
        top = composed_ranking({"text": phrase[f"a {shape}"], "negative": phrase[colour]}, {"text": 1.0, "negative": DEFAULT_NEGATIVE_WEIGHT})[:5]
        avoided_out.append(all(facts[i][0] != colour for i in top))
        on_topic.append(float(np.mean([facts[i][1] == shape for i in top])))
    by_image = [facts[nearest_other(vectors[i], i)] == facts[i] for i in range(len(items)) if facts.count(facts[i]) > 1]
    result = {
        "composed_shape_R@1": float(np.mean(composed["shape"])),
        "composed_colour_R@1": float(np.mean(composed["colour"])),
        "image_same_colour_shape_R@1": float(np.mean(by_image)),
        # Shares: cases with no item of the avoided colour in the top 5; of the top 5, items of the asked shape.
        "negative_avoided_out_share": float(np.mean(avoided_out)) if avoided_out else float("nan"),
        "negative_on_topic_share": float(np.mean(on_topic)) if on_topic else float("nan"),
    }
    scale = float(model.logit_scale.detach().exp())
    labels = demo_labels()
    label_vectors = np.stack([phrase[label] for label in labels])

    def default_counters(colour: str, shape: str) -> list[str]:
        # What assetsearch.moderation weighs a concept without counter-prompts against (default_counter_prompts).
        prompt = f"a {colour} {shape}"
        return lookalike_labels([prompt], phrase[prompt][None], labels, label_vectors, DEFAULTS["MODERATION_LOOKALIKES"]) or neutral

    counter_prompts = {
        "default": default_counters,
        "neutral": lambda colour, shape: neutral,
        "look_alikes": lambda colour, shape: [f"a {c} {shape}" for c in COLOURS if c != colour] + [f"a {colour} {s}" for s in SHAPES if s != shape],
    }

    def flagged_by(colour: str, shape: str, counters: list[str]) -> np.ndarray:
        # The concept "a <colour> <shape>" scored as assetsearch.moderation does, at threshold 0.5.
        prompts = np.stack([phrase[p] for p in (f"a {colour} {shape}", *counters)])
        logits = scale * vectors @ prompts.T
        background = background_logits(prompts[:1], stats, scale, DEFAULTS["MODERATION_BACKGROUND_SPREADS"])
        logits = np.concatenate([logits, np.tile(background, (len(vectors), 1))], axis=1)
        odds = np.exp(logits - logits.max(axis=1, keepdims=True))
        return odds[:, 0] / odds.sum(axis=1) >= 0.5

    # "a red triangle", and every colour and shape the catalogue holds at least concept_images of, as a concept of its own.
    concepts = sorted(f for f in set(facts) if facts.count(f) >= concept_images)
    for name, counters in counter_prompts.items():
        flags = {concept: flagged_by(*concept, counters(*concept)) for concept in {("red", "triangle"), *concepts}}
        truths = {concept: np.array([f == concept for f in facts]) for concept in flags}
        truth, flagged = truths["red", "triangle"], flags["red", "triangle"]
        result[f"moderation_{name}_flagged"] = int(flagged.sum())
        result[f"moderation_{name}_precision"] = float(truth[flagged].mean()) if flagged.any() else float("nan")
        result[f"moderation_{name}_recall"] = float(flagged[truth].mean()) if truth.any() else float("nan")
        # Flagging nothing is no precision.
        precisions = [float(truths[c][flags[c]].mean()) if flags[c].any() else 0.0 for c in concepts]
        recalls = [float(flags[c][truths[c]].mean()) for c in concepts]
        result[f"moderation_{name}_all_concepts"] = len(concepts)
        result[f"moderation_{name}_mean_precision"] = float(np.mean(precisions)) if concepts else float("nan")
        result[f"moderation_{name}_mean_recall"] = float(np.mean(recalls)) if concepts else float("nan")
    # Near-duplicates as assetsearch.duplicates finds them: candidates by vector, confirmed on pixels.
    threshold, tolerance = DEFAULTS["DUPLICATE_THRESHOLD"], DEFAULTS["DUPLICATE_PIXEL_TOLERANCE"]
    first, second = np.triu_indices(len(vectors), 1)  # each pair of distinct images once
    distinct = (vectors @ vectors.T)[first, second]
    candidates = np.flatnonzero(distinct >= threshold)
    pictures = [Picture(item.image) for item in items]
    differences = np.array([copy_difference(pictures[first[k]], pictures[second[k]]) for k in candidates])
    result["duplicate_candidate_pairs_of_distinct_images"] = len(candidates)
    result["duplicate_pairs_of_distinct_images"] = int((differences <= tolerance).sum())
    result["duplicate_lowest_distinct_difference"] = float(differences.min()) if len(differences) else float("nan")
    originals = items[:copies]
    lowest, highest = 1.0, 0.0
    for name, edit in independent.COPY_EDITS.items():
        edited = [edit(item.image) for item in originals]
        scores = (embed_images(model, preprocess, edited, fit=fit) * vectors[: len(originals)]).sum(axis=1)
        copy_differences = np.array([copy_difference(pictures[i], Picture(image)) for i, image in enumerate(edited)])
        result[f"duplicate_{name}_copies_found_share"] = float(np.mean((scores >= threshold) & (copy_differences <= tolerance)))
        lowest, highest = min(lowest, float(scores.min())), max(highest, float(copy_differences.max()))
    result["duplicate_lowest_copy_similarity"] = lowest
    result["duplicate_highest_copy_difference"] = highest
    result["duplicate_highest_distinct_similarity"] = float(distinct.max())
    return result


def format_independent(result: dict) -> str:
    header = "| condition | n | " + " | ".join(INDEPENDENT_METRICS) + " |"
    lines = [f"fit {result['fit']}, {result['images']} images", header, "|---" * (len(INDEPENDENT_METRICS) + 2) + "|"]
    overall = result["overall"]
    lines.append(f"| all | {result['images']} | " + " | ".join(f"{overall[m]:.3f}" for m in INDEPENDENT_METRICS) + " |")
    for condition, values in result["by_condition"].items():
        for value, row in values.items():
            lines.append(f"| {condition}={value} | {row['n']} | " + " | ".join(f"{row[m]:.3f}" for m in INDEPENDENT_METRICS) + " |")
    lines.append("| target | | " + " | ".join(f">= {INDEPENDENT_TARGETS[m]:.2f}" if m in INDEPENDENT_TARGETS else "" for m in INDEPENDENT_METRICS) + " |")
    ends = result["ends"]
    lines.append(f"objects at the ends of 2:1-3:1 images: colour {ends['colour_end']:.3f} vs {ends['colour_middle']:.3f} in the middle")
    for attribute in ("shape", "count"):
        lines += ["", format_confusion(attribute, result["confusion"][attribute])]
    return "\n".join(lines)


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
    parser.add_argument("--renderer", choices=("training", "independent"), default="training",
                        help="held-out images from the training generator (default) or the independent renderer")
    parser.add_argument("--fit", choices=(*FIT_MODES, "all"), default=None,
                        help="how non-square images are fitted (default: the encoder setting's default); all: each")
    parser.add_argument("--queries", action="store_true",
                        help="independent renderer: also composed, negative-term, query-by-image, moderation and near-duplicate figures")
    parser.add_argument("--cases", type=int, default=QUERY_CASES,
                        help=f"with --queries: composed and negative-term cases of each kind (default {QUERY_CASES})")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    model, preprocess, tokenizer = load_model(args.checkpoint)
    if args.renderer == "independent":
        items = independent.make_catalogue(args.images, args.seed)
        fits = FIT_MODES if args.fit == "all" else (args.fit or default_fit(),)
        results = [evaluate_independent(model, tokenizer, preprocess, items, fit=fit, seed=args.seed) for fit in fits]
        if args.queries:
            for result in results:
                result["queries"] = evaluate_queries(
                    model, tokenizer, preprocess, items, fit=result["fit"], cases=args.cases, seed=args.seed
                )
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            print("\n\n".join(format_independent(result) for result in results))
            for result in results:
                for name, value in result.get("queries", {}).items():
                    print(f"{result['fit']}: {name} {value:.3f}" if isinstance(value, float) else f"{result['fit']}: {name} {value}")
            print(f"({args.images} independent images, {time.perf_counter() - started:.1f} s)")
        return 0 if all(results[0]["overall"][k] >= v for k, v in INDEPENDENT_TARGETS.items()) else 1
    metrics = evaluate(model, preprocess, tokenizer, make_heldout(args.images, args.seed), args.seed)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_table(metrics))
        print(f"({args.images} held-out images, {time.perf_counter() - started:.1f} s)")
    return 0 if all(metrics[k] >= v for k, v in TARGETS.items()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
