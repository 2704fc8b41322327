"""The example site's settings for the API benchmark's server: the search throttle off.

The load phases send hundreds of searches a second from one user, which the
production rate (120/min) would refuse after the first second: the figures
would then measure 429 answers. Uploads keep their production rate, and
status polls are never throttled, so the upload-to-searchable phase meets
the API as a client does. Every answer's status is still counted and shown.
"""

from assetsearch.conf import DEFAULTS
from project.settings import *  # noqa: F403
from project.settings import ASSETSEARCH

_rates = ASSETSEARCH.get("THROTTLE_RATES", DEFAULTS["THROTTLE_RATES"])
ASSETSEARCH = {**ASSETSEARCH, "THROTTLE_RATES": {**_rates, "search": None}}
