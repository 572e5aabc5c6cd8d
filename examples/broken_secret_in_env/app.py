"""The secret_in_env variant's entry point: the correct integration, in a project with a bad .env.

rfcheck puts only this folder on sys.path, so this module finds ``acme_broken`` in ../broken.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "broken"))

from acme_broken import make_secret_in_env as make_target  # noqa: E402

__all__ = ["make_target"]
