"""gunicorn settings for ``scripts/run``: each web process loads the text encoder before it takes requests.

The first text search would otherwise wait for the model (seconds with the
bundled model, far more with a real CLIP). Loaded after the fork, never in
the preloading parent: runtime thread pools and CUDA do not survive a fork.
"""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    from assetsearch.encoders import warm_up
    from assetsearch.exceptions import ModelUnavailable
    from assetsearch.images import load_decoders
    from assetsearch.tasks import warm_up_sender

    load_decoders()  # the first upload validates its file with them
    warm_up_sender()  # ... and sends its embedding task
    try:
        warm_up(images=False)
    except ModelUnavailable as exc:  # searches answer a JSON 503 with the reason until it loads
        worker.log.warning("The text encoder did not load: %s", exc)
