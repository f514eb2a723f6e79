"""Checked downloads: sha256 verification, atomic writes, offline copies and clear errors. No network used."""

import hashlib
import io
import urllib.error

import pytest

from helpers import downloads
from helpers.downloads import ASSETS, Asset, DownloadError, fetch

PAYLOAD = b"To be, or not to be, that is the question.\n" * 100


@pytest.fixture
def fake_asset(monkeypatch, tmp_path):
    """A small asset served by a fake URL, with the data folder and offline folder in tmp."""
    asset = Asset("fake", "https://example.invalid/fake.txt", hashlib.sha256(PAYLOAD).hexdigest(), "fake.txt", "a test file")
    monkeypatch.setitem(ASSETS, "fake", asset)
    monkeypatch.setenv("GPTFS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GPTFS_OFFLINE_DIR", raising=False)
    return asset


def serve(monkeypatch, body_factory):
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        return body_factory()

    monkeypatch.setattr(downloads.urllib.request, "urlopen", urlopen)
    return calls


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_download_is_verified_and_cached(fake_asset, monkeypatch, tmp_path):
    calls = serve(monkeypatch, lambda: io.BytesIO(PAYLOAD))
    path = fetch("fake")
    assert path.read_bytes() == PAYLOAD
    assert fetch("fake") == path and len(calls) == 1  # the verified copy is reused
    assert leftovers(path.parent) == ["fake.txt"]


def test_checksum_mismatch_keeps_nothing(fake_asset, monkeypatch, tmp_path):
    serve(monkeypatch, lambda: io.BytesIO(PAYLOAD + b"tampered"))
    with pytest.raises(DownloadError, match="sha256"):
        fetch("fake")
    assert leftovers(tmp_path / "data") == []


def test_damaged_cached_copy_is_replaced(fake_asset, monkeypatch, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fake.txt").write_bytes(b"half a file")
    serve(monkeypatch, lambda: io.BytesIO(PAYLOAD))
    assert fetch("fake").read_bytes() == PAYLOAD


class BrokenStream(io.BytesIO):
    """A response that dies after its first block, as a dropped connection does."""

    def read(self, size=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection reset by peer")
        return super().read(16)


def test_interrupted_download_leaves_no_partial_file(fake_asset, monkeypatch, tmp_path):
    serve(monkeypatch, lambda: BrokenStream(PAYLOAD))
    with pytest.raises(DownloadError, match="connection reset"):
        fetch("fake")
    assert leftovers(tmp_path / "data") == []


def test_offline_without_copy_says_what_to_do(fake_asset, monkeypatch, tmp_path):
    def no_network():
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    serve(monkeypatch, no_network)
    with pytest.raises(DownloadError) as error:
        fetch("fake")
    message = str(error.value)
    assert "Could not get fake" in message
    assert str(tmp_path / "data" / "fake.txt") in message  # where to put it
    assert "GPTFS_OFFLINE_DIR" in message  # which variable to set
    assert fake_asset.sha256 in message


@pytest.mark.parametrize("layout", ["fake.txt", "data/fake.txt", "tiktoken_cache/{sha1}"])
def test_local_copy_is_used_before_the_network(fake_asset, monkeypatch, tmp_path, layout):
    copy = tmp_path / "offline" / layout.format(sha1=fake_asset.tiktoken_cache_name)
    copy.parent.mkdir(parents=True)
    copy.write_bytes(PAYLOAD)
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", str(tmp_path / "offline"))
    calls = serve(monkeypatch, lambda: io.BytesIO(b""))
    assert fetch("fake").read_bytes() == PAYLOAD
    assert calls == []


def test_bad_local_copy_is_rejected(fake_asset, monkeypatch, tmp_path):
    (tmp_path / "offline").mkdir()
    (tmp_path / "offline" / "fake.txt").write_bytes(b"not the file")
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", str(tmp_path / "offline"))
    with pytest.raises(DownloadError, match="sha256"):
        fetch("fake")
    assert leftovers(tmp_path / "data") == []


def test_unknown_asset_lists_the_known_ones():
    with pytest.raises(ValueError, match="tinyshakespeare"):
        fetch("shakespeare")


def test_real_assets_fetch_and_verify(monkeypatch, tmp_path, offline_dir):
    """The three real files, through the real code, into an empty data folder from an offline folder."""
    monkeypatch.setenv("GPTFS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", str(offline_dir))
    text = fetch("tinyshakespeare").read_text(encoding="utf-8")
    assert len(text) == 1_115_394
    assert fetch("gpt2-vocab.bpe").read_text(encoding="utf-8").count("\n") >= 50_000
    assert fetch("gpt2-encoder.json").stat().st_size > 1_000_000


def test_gpt2_tiktoken_works_from_our_verified_copies(monkeypatch, tmp_path, offline_dir):
    monkeypatch.setenv("GPTFS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", str(offline_dir))
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    enc = downloads.gpt2_tiktoken()
    assert enc.n_vocab == 50257
    assert enc.encode("Hello world") == [15496, 995]
    assert (tmp_path / "tiktoken_cache" / ASSETS["gpt2-vocab.bpe"].tiktoken_cache_name).exists()


def test_asset_without_checksum_is_refused_before_any_download(fake_asset, monkeypatch):
    monkeypatch.setitem(ASSETS, "fake", Asset("fake", fake_asset.url, "not-recorded", "fake.txt", "a test file"))
    calls = serve(monkeypatch, lambda: io.BytesIO(PAYLOAD))
    with pytest.raises(DownloadError, match="No sha256 is recorded"):
        fetch("fake")
    assert calls == []


def test_every_real_asset_has_a_url_and_a_well_formed_or_refused_checksum():
    for asset in ASSETS.values():
        assert asset.url.startswith("https://")
        assert len(asset.sha256) == 64 or "not-recorded" in asset.sha256
