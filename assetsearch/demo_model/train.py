"""Train the bundled demo CLIP model from scratch on generated captioned images.

    python -m assetsearch.demo_model.train [--steps 1500] [--seed 0] [--out PATH]
    python -m assetsearch.demo_model.train --augment 0.75 --captions varied --steps 2500 --out new.pt

The first command is stage 1 of the bundled checkpoint (README "The model"
gives stages 2 and 3, which fine-tune it with ``--init``). The second is the
recipe for images as sites upload them (:class:`synthetic.Augmentation`:
rotation, 1:3-3:1 canvases letterboxed, border cuts, off-palette colours,
outlines, aliased edges, JPEG 40-95, noise, blur; with ``--scatter`` and
``--small-scale`` groups strewn over their side and small objects down to
half size, as the bundled stages 2 and 3 use) and for what people type
(:func:`synthetic.describe_varied`: keyword lists, "x2", requests,
questions, attributes in any order, no articles). Evaluate a result with
``python -m assetsearch.demo_model.evaluate --checkpoint new.pt`` and
``... --renderer independent``, and ship it only if it beats the bundled
checkpoint on both.

Uses open_clip's own model builder (architecture in
``model_configs/assetsearch-demo.json``), tokenizer and contrastive loss
(:class:`open_clip.ClipLoss`).

The image tower is CLIP's modified ResNet (the RN50 family: three-conv stem,
bottleneck stages, attention pooling) at width 16 with one block per stage.
At the same CPU budget it learns shape far faster than a small ViT: after
300 steps it classified 53% of held-out shapes against the ViT's 12%, since
objects here are 20-40 pixels and a 16-pixel patch grid cuts them apart.

Images are rendered once, on every core, into two pools: random scenes, and
groups of four scenes identical but for their shape, or for their colour
(hard negatives). Each step draws half a batch from each and writes fresh
captions, so the text side sees new phrasings every epoch. Shape groups
alone taught shape so well that images of one shape in different colours
came out nearer than one colour in different shapes (cosine 0.81 vs 0.53),
and an image plus the words "a square" could no longer turn a red circle
into a red square; colour groups keep the two balanced.

``--image-contrast WEIGHT`` adds a supervised contrastive loss between the
batch's images (:func:`same_object_loss`): pictures of the same colour and
shape attract, the rest repel. CLIP's loss alone leaves two red stars on
different backgrounds only as close as their captions, so query by image
found the picture laid out like the query first (README "The model" has
the stages that use it and what it changed).

The result is stored as fp16 and is loaded like any open_clip checkpoint.
Runs in about 36 minutes on 2 CPU cores, rendering and evaluation included;
the same seed and thread count give the same weights.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from . import CHECKPOINT_PATH, MODEL_NAME, register_model_config
from .synthetic import COLOURS, COUNTS, SHAPES, Augmentation, Scene, describe, describe_one_attribute, describe_varied, random_scene

CAPTIONERS = {"natural": describe, "varied": describe_varied}
# Temperature of --image-contrast: the usual supervised-contrastive value; CLIP's learnt 0.01 is far sharper.
IMAGE_CONTRAST_TEMPERATURE = 0.1


def augmented(seed: int, fraction: float) -> bool:
    """Whether the image of ``seed`` is drawn with augmentations: a draw of its own, so any process agrees."""
    return fraction > 0 and random.Random(f"augment?{seed}").random() < fraction


def _render_chunk(job: tuple[list[Scene], int, int, float, Augmentation]) -> np.ndarray:
    scenes, first_seed, size, fraction, augment = job
    return np.stack([
        np.asarray(scene.render(first_seed + i, size=size, augment=augment if augmented(first_seed + i, fraction) else None), dtype=np.uint8)
        for i, scene in enumerate(scenes)
    ])


def render_images(scenes: list[Scene], first_seed: int, size: int, label: str, augment: float = 0.0,
                  augmentation: Augmentation = Augmentation()) -> torch.Tensor:
    """Render scenes into a uint8 tensor (N, 3, size, size), on every core.

    Scene ``i`` is drawn with seed ``first_seed + i``, so the pixels do not
    depend on the number of processes; a share ``augment`` of them with
    ``augmentation``.
    """
    chunk = 500
    pixels = torch.empty((len(scenes), 3, size, size), dtype=torch.uint8)
    starts = range(0, len(scenes), chunk)
    jobs = [(scenes[start : start + chunk], first_seed + start, size, augment, augmentation) for start in starts]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        for start, array in zip(starts, pool.imap(_render_chunk, jobs)):
            pixels[start : start + len(array)] = torch.from_numpy(array).permute(0, 3, 1, 2)
            done = start + len(array)
            if done % 10000 == 0 or done == len(scenes):
                print(f"  rendered {done}/{len(scenes)} {label} ({time.perf_counter() - started:.0f} s)", flush=True)
    return pixels


def variant_groups(rng: random.Random, groups: int, size: int, attributes: Sequence[str]) -> list[list[Scene]]:
    """Hard negatives: groups of up to ``size`` scenes identical but for one attribute.

    Random batches rarely hold two images that differ in one attribute only,
    so the loss can be lowered with the most visible one alone; a group that
    differs only in shape makes shape pay, one that differs only in colour
    keeps colour in the image vectors, one that differs only in count (its
    three values, so three scenes) makes the model count. Groups take
    ``attributes`` in turn.
    """
    values = {"shape": SHAPES, "colour": tuple(COLOURS), "count": COUNTS}
    scenes = []
    for g in range(groups):
        base = random_scene(rng)
        attribute = attributes[g % len(attributes)]
        scenes.append([replace(base, **{attribute: value}) for value in rng.sample(values[attribute], min(size, len(values[attribute])))])
    return scenes


def same_object_loss(features: torch.Tensor, labels: Sequence[tuple], temperature: float = IMAGE_CONTRAST_TEMPERATURE) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., 2020) between the batch's images.

    CLIP's loss pairs each image with its caption only, so two pictures of
    a red star on different backgrounds, at different places, are pulled
    together only as far as their captions are alike; query by image then
    finds the picture laid out like the query before the one showing the
    same thing. Here each image is pulled toward the batch's other images
    with the same label (colour and shape) and away from the rest, hard
    negatives included: a group member that differs only in shape or colour.
    Anchors without a positive in the batch do not count.
    """
    features = torch.nn.functional.normalize(features.float(), dim=-1)
    logits = features @ features.T / temperature
    self_mask = torch.eye(len(labels), dtype=torch.bool, device=features.device)
    ids = {label: i for i, label in enumerate(dict.fromkeys(labels))}
    classes = torch.tensor([ids[label] for label in labels], device=features.device)
    positive = (classes[:, None] == classes[None, :]) & ~self_mask
    log_prob = logits.masked_fill(self_mask, -torch.inf).log_softmax(dim=1)
    anchors = positive.any(dim=1)
    per_anchor = -(log_prob.masked_fill(~positive, 0).sum(dim=1)[anchors] / positive.sum(dim=1)[anchors])
    return per_anchor.mean() if anchors.any() else features.sum() * 0


def normalizer(model, device: torch.device | str = "cpu"):
    """ToTensor + Normalize as in the model's preprocess; images are already at its size."""
    mean = torch.tensor(model.visual.image_mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.image_std, device=device).view(1, 3, 1, 1)
    return lambda pixels: (pixels.float() / 255.0 - mean) / std


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def train(args: argparse.Namespace) -> dict:
    import open_clip

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    register_model_config()
    # --init fine-tunes a checkpoint (e.g. the bundled one) instead of starting from random weights.
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME, pretrained=args.init)
    # oneDNN's convolutions are fastest on NHWC tensors (about 1.4x here).
    model = model.to(memory_format=torch.channels_last)
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    image_size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    start = f"from {args.init}" if args.init else "from scratch"
    print(f"model {MODEL_NAME}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, {start}", flush=True)

    rng = random.Random(f"train-{args.seed}")
    scenes = [random_scene(rng) for _ in range(args.images)]
    groups = variant_groups(rng, args.group_pool, args.group_size, args.group_attributes) if args.hard_groups else []
    group_scenes = [scene for group in groups for scene in group]
    group_starts = np.cumsum([0] + [len(group) for group in groups]).tolist()
    print(f"rendering {len(scenes)} random and {len(group_scenes)} hard-negative training images at {image_size}px", flush=True)
    augmentation = Augmentation(scatter=args.scatter, small_scale=args.small_scale, shape_jitter=args.shape_jitter)
    pixels = render_images(scenes, args.seed * 10_000_000, image_size, "random scenes", args.augment, augmentation)
    if groups:
        group_pixels = render_images(group_scenes, args.seed * 10_000_000 + 5_000_000, image_size, "hard-negative scenes", args.augment, augmentation)
    caption = CAPTIONERS[args.captions]
    device = torch.device(args.device)
    model = model.to(device)
    normalize = normalizer(model, device)
    bf16 = training_precision(args.precision, device) == "bf16"
    print(f"training in {'bf16 autocast' if bf16 else 'fp32'} on {device}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    loss_fn = open_clip.ClipLoss()
    rng = random.Random(f"batches-{args.seed}")
    model.train()
    started = time.perf_counter()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        indices = rng.sample(range(len(scenes)), args.batch_size - args.hard_groups * args.group_size)
        batch_scenes = [scenes[i] for i in indices]
        batch_pixels = pixels[indices]
        if args.hard_groups:
            chosen = rng.sample(range(args.group_pool), args.hard_groups)
            members = [(g, group_starts[g] + j) for g in chosen for j in range(len(groups[g]))]
            batch_scenes += [group_scenes[i] for _, i in members]
            batch_pixels = torch.cat([batch_pixels, group_pixels[[i for _, i in members]]])
        images = normalize(batch_pixels.to(device)).contiguous(memory_format=torch.channels_last)
        captions = [caption(scene, rng).text for scene in batch_scenes]
        if args.single_attribute and args.hard_groups:
            # A group differs in one attribute only, so that attribute alone tells its members apart.
            for position, (g, _) in enumerate(members, start=len(indices)):
                if rng.random() < args.single_attribute:
                    attribute = args.group_attributes[g % len(args.group_attributes)]
                    captions[position] = describe_one_attribute(batch_scenes[position], attribute, rng).text
        texts = tokenizer(captions).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            image_features, text_features, logit_scale = model(images, texts)
        loss = loss_fn(image_features.float(), text_features.float(), logit_scale.float())
        contrast = same_object_loss(image_features, [(s.colour, s.shape) for s in batch_scenes]) if args.image_contrast else None
        if contrast is not None:
            loss = loss + args.image_contrast * contrast
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 25 == 0 or step == args.steps - 1:
            elapsed = time.perf_counter() - started
            eta = elapsed / (step + 1) * (args.steps - step - 1)
            print(
                f"step {step + 1}/{args.steps} loss {loss.item():.3f}"
                + (f" (image contrast {contrast.item():.3f})" if contrast is not None else "")
                + f" scale {logit_scale.item():.1f} "
                f"{(step + 1) * args.batch_size / elapsed:.0f} img/s elapsed {elapsed / 60:.1f} min eta {eta / 60:.1f} min",
                flush=True,
            )

    model.eval()
    state = {k: (v.half() if v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()}
    out = Path(args.out)
    torch.save(state, out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB) after {(time.perf_counter() - started) / 60:.1f} min of steps")
    return {"seed": args.seed, "steps": args.steps, "batch_size": args.batch_size, "images": args.images, "hard_groups": args.hard_groups,
            "group_size": args.group_size, "group_pool": args.group_pool, "group_attributes": list(args.group_attributes),
            "augment": args.augment, "scatter": args.scatter, "small_scale": args.small_scale, "shape_jitter": args.shape_jitter, "captions": args.captions, "single_attribute": args.single_attribute, "image_contrast": args.image_contrast, "device": args.device, "precision": "bf16" if bf16 else "fp32",
            "lr": args.lr, "warmup": args.warmup, "init": Path(args.init).name if args.init else None}


def training_precision(requested: str, device: torch.device) -> str:
    """``bf16`` or ``fp32`` for ``--precision``.

    bf16 autocast is what the bundled checkpoint was trained with, on a CPU
    with bf16 instructions. A CPU without them (AVX2 only) emulates bf16:
    a step of the bundled recipe then takes minutes instead of 1.4 s, so
    ``auto`` trains such a CPU in fp32.
    """
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=60000, help="size of the rendered training pool")
    parser.add_argument("--hard-groups", type=int, default=32, help="hard-negative groups per batch (0: none)")
    parser.add_argument("--group-size", type=int, default=4, help="scenes per hard-negative group (2-8)")
    parser.add_argument("--group-pool", type=int, default=8000, help="rendered hard-negative groups to draw from")
    parser.add_argument("--group-attributes", type=lambda text: text.split(","), default=["shape", "colour"],
                        help="what the scenes of a group differ in (shape, colour, count), groups taking them in turn "
                             "(default shape,colour; a count group has three scenes)")
    parser.add_argument("--init", default=None, metavar="CHECKPOINT",
                        help="fine-tune this checkpoint instead of training from random weights (e.g. the bundled one)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--augment", type=float, default=0.0,
                        help="share of training images drawn with augmentations (0: the bundled recipe; 0.75 recommended)")
    parser.add_argument("--scatter", type=float, default=0.0, metavar="FRACTION",
                        help="this fraction of augmented images strew their objects over their position's region "
                             "instead of a row (default 0)")
    parser.add_argument("--small-scale", type=float, default=1.0, metavar="FACTOR",
                        help="augmented \"small\" objects are drawn at FACTOR to 1x their size (default 1: as rendered)")
    parser.add_argument("--shape-jitter", type=float, default=0.0, metavar="FRACTION",
                        help="this fraction of augmented images draw their shape in other proportions "
                             "(synthetic.SHAPE_FORMS: a cross's arms, a star's points, a stretch; default 0)")
    parser.add_argument("--captions", choices=tuple(CAPTIONERS), default="natural",
                        help="natural sentences only (the bundled recipe) or varied search-box forms too")
    parser.add_argument("--single-attribute", type=float, default=0.0, metavar="FRACTION",
                        help="this fraction of hard-negative captions name only the attribute their group varies "
                             "(\"green\", \"a star\"), as tags, composed queries and negative terms do (default 0)")
    parser.add_argument("--image-contrast", type=float, default=0.0, metavar="WEIGHT",
                        help="add this weight of a supervised contrastive loss between images: pictures of the same "
                             "colour and shape attract, the rest repel, for query by image (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device to train on (cpu, cuda); rendering stays on the CPU")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="bf16 autocast or fp32; auto: bf16 on a GPU or a CPU with bf16 instructions, else fp32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(CHECKPOINT_PATH))
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out evaluations at the end")
    parser.add_argument("--eval-images", type=int, default=1000, help="images of each held-out evaluation (default 1000)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = train(args)
    if not args.no_eval:
        from .evaluate import evaluate, evaluate_independent, format_independent, format_table, load_model, make_heldout
        from .independent import make_catalogue

        model, preprocess, tokenizer = load_model(args.out)
        metrics = evaluate(model, preprocess, tokenizer, make_heldout(args.eval_images))
        print(format_table(metrics))
        independent = evaluate_independent(model, tokenizer, preprocess, make_catalogue(args.eval_images))
        print(format_independent(independent))
        info["wall_minutes"] = round((time.perf_counter() - started) / 60, 1)
        summary = {"training": info, "heldout": metrics, "independent": {**independent["overall"], **independent["ends"], "fit": independent["fit"]}}
        Path(args.out).with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min (rendering, training and evaluation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
