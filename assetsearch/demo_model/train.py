"""Train the bundled demo CLIP model from scratch on generated captioned images.

    python -m assetsearch.demo_model.train [--steps 1800] [--seed 0] [--out PATH]

Uses open_clip's own model builder (architecture in
``model_configs/assetsearch-demo.json``), tokenizer and contrastive loss
(:class:`open_clip.ClipLoss`). Images are rendered once into a pool; each step
draws a batch from it and writes fresh captions for it, so the text side sees
new phrasings every epoch. The result is stored as fp16 (about 20 MB) and is
loaded like any open_clip checkpoint. Runs in about 35 minutes on 2 CPU
cores; the same seed and thread count give the same weights.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import CHECKPOINT_PATH, MODEL_NAME, register_model_config
from .synthetic import SHAPES, Scene, describe, random_scene


def render_pool(count: int, seed: int, size: int):
    """Render ``count`` random scenes into a uint8 tensor (N, 3, size, size)."""
    rng = random.Random(f"train-{seed}")
    scenes = [random_scene(rng) for _ in range(count)]
    pixels = torch.empty((count, 3, size, size), dtype=torch.uint8)
    started = time.perf_counter()
    for i, scene in enumerate(scenes):
        image = scene.render(seed * count + i, size=size)
        pixels[i] = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)
        if (i + 1) % 10000 == 0:
            print(f"  rendered {i + 1}/{count} images ({time.perf_counter() - started:.0f} s)", flush=True)
    return scenes, pixels


def shape_groups(rng: random.Random, groups: int, size: int) -> list[Scene]:
    """Hard negatives: groups of scenes identical but for their shape.

    Random batches rarely hold two images that differ only in shape, so the
    loss can be lowered with colour alone; these groups make shape pay.
    """
    scenes = []
    for _ in range(groups):
        base = random_scene(rng)
        for shape in rng.sample(SHAPES, size):
            scenes.append(Scene(**{**base.as_dict(), "shape": shape}))
    return scenes


def render_batch(scenes: list[Scene], rng: random.Random, size: int) -> torch.Tensor:
    arrays = [np.array(scene.render(rng.randrange(2**31), size=size), dtype=np.uint8) for scene in scenes]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def normalizer(model):
    """ToTensor + Normalize as in the model's preprocess; images are already at its size."""
    mean = torch.tensor(model.visual.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.image_std).view(1, 3, 1, 1)
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
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME)
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    image_size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    print(f"model {MODEL_NAME}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters", flush=True)

    print(f"rendering {args.images} training images at {image_size}px", flush=True)
    scenes, pixels = render_pool(args.images, args.seed, image_size)
    normalize = normalizer(model)

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
        hard = shape_groups(rng, args.hard_groups, 4) if args.hard_groups else []
        indices = rng.sample(range(len(scenes)), args.batch_size - len(hard))
        batch_scenes = [scenes[i] for i in indices] + hard
        batch_pixels = pixels[indices]
        if hard:
            batch_pixels = torch.cat([batch_pixels, render_batch(hard, rng, image_size)])
        images = normalize(batch_pixels)
        texts = tokenizer([describe(scene, rng).text for scene in batch_scenes])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            image_features, text_features, logit_scale = model(images, texts)
        loss = loss_fn(image_features.float(), text_features.float(), logit_scale.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 25 == 0 or step == args.steps - 1:
            elapsed = time.perf_counter() - started
            eta = elapsed / (step + 1) * (args.steps - step - 1)
            print(
                f"step {step + 1}/{args.steps} loss {loss.item():.3f} scale {logit_scale.item():.1f} "
                f"{(step + 1) * args.batch_size / elapsed:.0f} img/s elapsed {elapsed / 60:.1f} min eta {eta / 60:.1f} min",
                flush=True,
            )

    model.eval()
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    out = Path(args.out)
    torch.save(state, out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB) after {(time.perf_counter() - started) / 60:.1f} min")
    return {"seed": args.seed, "steps": args.steps, "batch_size": args.batch_size, "images": args.images, "hard_groups": args.hard_groups}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=60000, help="size of the rendered training pool")
    parser.add_argument("--hard-groups", type=int, default=32, help="groups of 4 shape-only variants per batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(CHECKPOINT_PATH))
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation at the end")
    args = parser.parse_args(argv)
    info = train(args)
    if not args.no_eval:
        from .evaluate import evaluate, format_table, load_model, make_heldout

        model, preprocess, tokenizer = load_model(args.out)
        metrics = evaluate(model, preprocess, tokenizer, make_heldout(1000))
        print(format_table(metrics))
        Path(args.out).with_suffix(".json").write_text(json.dumps({"training": info, "heldout": metrics}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
