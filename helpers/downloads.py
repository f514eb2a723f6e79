"""Checked downloads: every file is verified by sha256 and written atomically.

Infrastructure, not taught in a lesson. `fetch(name)` returns the path of a
verified file in the data folder, taking it from (in order):

1. the data folder itself, if a verified copy is already there;
2. a local copy in the folder named by GPTFS_OFFLINE_DIR (how CI and workshops
   without wifi work): `<dir>/<filename>`, `<dir>/data/<filename>`, or tiktoken's
   cache name `<dir>/tiktoken_cache/<sha1 of the URL>`;
3. the real URL.

A copy whose checksum does not match is never kept, and a write that is
interrupted leaves no partial file: bytes go to a temporary file in the same
folder, which is renamed into place only once it is complete and verified.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from helpers.files import atomic_write

DATA_ENV = "GPTFS_DATA_DIR"  # where downloads are cached (default: the repo's data/ folder)
OFFLINE_ENV = "GPTFS_OFFLINE_DIR"  # a folder holding local copies of the files, used before the network


@dataclass(frozen=True)
class Asset:
    """A file the course downloads."""

    name: str
    url: str
    sha256: str
    filename: str
    description: str

    @property
    def tiktoken_cache_name(self) -> str:
        """The name tiktoken gives this file in its cache: the SHA-1 of its URL."""
        return hashlib.sha1(self.url.encode()).hexdigest()


ASSETS: dict[str, Asset] = {
    asset.name: asset
    for asset in [
        Asset(
            "tinyshakespeare",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            "tinyshakespeare.txt",
            "Tiny Shakespeare, 1,115,394 characters",
        ),
        Asset(
            "gpt2-vocab.bpe",
            "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
            "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
            "gpt2-vocab.bpe",
            "GPT-2's BPE merges (50,000)",
        ),
        Asset(
            "gpt2-encoder.json",
            "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
            "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
            "gpt2-encoder.json",
            "GPT-2's vocabulary (50,257 tokens)",
        ),
        # GPT-2's weights as Hugging Face hosts them (lesson 06: GPT.from_pretrained). The sha256 is the
        # file's Git LFS object id, shown on its Hugging Face page. Where it is not recorded yet, the
        # entry holds a placeholder that no file matches, so fetch refuses the file (fails closed).
        Asset(
            "gpt2-model.safetensors",
            "https://huggingface.co/openai-community/gpt2/resolve/main/model.safetensors",
            "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707",
            "gpt2-model.safetensors",
            "GPT-2 small's weights (124M parameters, 548 MB)",
        ),
        Asset(
            "gpt2-medium-model.safetensors",
            "https://huggingface.co/openai-community/gpt2-medium/resolve/main/model.safetensors",
            "sha256-not-recorded-yet",
            "gpt2-medium-model.safetensors",
            "GPT-2 medium's weights (355M parameters, 1.5 GB)",
        ),
        Asset(
            "gpt2-large-model.safetensors",
            "https://huggingface.co/openai-community/gpt2-large/resolve/main/model.safetensors",
            "sha256-not-recorded-yet",
            "gpt2-large-model.safetensors",
            "GPT-2 large's weights (774M parameters, 3.1 GB)",
        ),
        Asset(
            "gpt2-xl-model.safetensors",
            "https://huggingface.co/openai-community/gpt2-xl/resolve/main/model.safetensors",
            "sha256-not-recorded-yet",
            "gpt2-xl-model.safetensors",
            "GPT-2 XL's weights (1558M parameters, 6.4 GB)",
        ),
    ]
}


class DownloadError(RuntimeError):
    """A file could not be obtained, or did not match its checksum."""


def data_dir() -> Path:
    """The folder where downloads are cached, created if needed.

    GPTFS_DATA_DIR if set; else the `data/` folder of a source checkout; else
    `~/.cache/gpt-from-scratch` (an installed package, as on Colab).
    """
    if os.environ.get(DATA_ENV):
        path = Path(os.environ[DATA_ENV])
    else:
        checkout = Path(__file__).resolve().parent.parent
        if (checkout / "pyproject.toml").exists():
            path = checkout / "data"
        else:
            path = Path.home() / ".cache" / "gpt-from-scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(target: Path, source, expected_sha256: str, origin: str) -> None:
    """Copy the byte stream `source` to `target` through a temporary file, verifying its sha256."""
    with atomic_write(target) as out:
        digest = hashlib.sha256()
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
        if digest.hexdigest() != expected_sha256:
            raise DownloadError(
                f"{target.name} from {origin} has sha256 {digest.hexdigest()}, expected {expected_sha256}. "
                "The file was not kept. Delete any stale copy there and try again."
            )


def _local_copy(asset: Asset) -> Path | None:
    folder = os.environ.get(OFFLINE_ENV)
    if not folder:
        return None
    folder = Path(folder)
    for candidate in (
        folder / asset.filename,
        folder / "data" / asset.filename,
        folder / "tiktoken_cache" / asset.tiktoken_cache_name,
        folder / asset.tiktoken_cache_name,
    ):
        if candidate.is_file():
            return candidate
    return None


def _missing_message(asset: Asset, target: Path, reason: str) -> str:
    return (
        f"Could not get {asset.name} ({asset.description}): {reason}.\n"
        f"Fix it in one of these ways:\n"
        f"  - connect to the internet and run again (it downloads {asset.url});\n"
        f"  - put a copy of the file at {target} (sha256 {asset.sha256});\n"
        f"  - or set {OFFLINE_ENV} to a folder that holds {asset.filename} "
        f"(an unzipped offline bundle works)."
    )


def fetch(name: str, *, timeout: float = 30.0) -> Path:
    """Return the path of a verified copy of asset `name`, downloading it if needed."""
    if name not in ASSETS:
        raise ValueError(f"unknown asset {name!r}; known assets: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    if not re.fullmatch(r"[0-9a-f]{64}", asset.sha256):
        raise DownloadError(
            f"No sha256 is recorded for {asset.name}, so the course will not download it unverified. "
            f"Download {asset.url} yourself and pass the file's path instead."
        )
    target = data_dir() / asset.filename
    if target.exists():
        if sha256_of(target) == asset.sha256:
            return target
        target.unlink()  # a stale or damaged copy: fetch it again

    local = _local_copy(asset)
    if local is not None:
        with open(local, "rb") as source:
            _write_atomically(target, source, asset.sha256, str(local))
        return target

    try:
        with urllib.request.urlopen(asset.url, timeout=timeout) as response:
            _write_atomically(target, response, asset.sha256, asset.url)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise DownloadError(_missing_message(asset, target, f"the download failed ({error})")) from error
    return target


def gpt2_tiktoken():
    """tiktoken's `gpt2` encoding, built from our verified copies of GPT-2's BPE files.

    tiktoken downloads the same two files into its own cache. We place our
    verified copies there first, so the reference tokenizer works offline too.
    """
    import tiktoken

    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        cache = data_dir() / "tiktoken_cache"
        cache.mkdir(exist_ok=True)
        for name in ("gpt2-vocab.bpe", "gpt2-encoder.json"):
            asset = ASSETS[name]
            cached = cache / asset.tiktoken_cache_name
            if not cached.exists():
                with open(fetch(name), "rb") as source:
                    _write_atomically(cached, source, asset.sha256, "the data folder")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    return tiktoken.get_encoding("gpt2")
