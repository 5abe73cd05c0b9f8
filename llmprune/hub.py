"""Whether the Hugging Face Hub can be used now: offline by the user's setting, or unreachable.

Asked before anything slow, so that an offline machine gets one clear line at once instead of minutes of
retries (huggingface_hub retries a failed connection five times with back-off).
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

_FALSE = ("", "0", "false", "no", "off")


def offline_setting() -> str | None:
    """The environment variable that makes the Hub offline, if one does."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "0").strip().lower() not in _FALSE:
            return name
    return None


@functools.cache
def _reachable(host: str, port: int, timeout: float) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def unavailable(timeout: float = 3.0) -> str | None:
    """Why the Hub cannot be used now (None when it can): the offline setting, or no connection to it."""
    setting = offline_setting()
    if setting:
        return f"{setting} is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    if not _reachable(host, port, timeout):
        return f"{host} cannot be reached (no network?)"
    return None
