"""atomic_write: the target is either the complete new file or left as it was."""

import os
import stat

import pytest

from helpers.files import atomic_write


def test_the_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_write(target, "w", encoding="utf-8") as f:
        f.write("hello")
        assert not target.exists()  # still a temporary file
    assert target.read_text(encoding="utf-8") == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_the_file_gets_the_mode_a_plain_open_would_give(tmp_path, umask, expected):
    previous = os.umask(umask)
    try:
        with atomic_write(tmp_path / "atomic.bin") as f:
            f.write(b"x")
        with open(tmp_path / "plain.bin", "wb") as f:
            f.write(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "atomic.bin").stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode) == expected
