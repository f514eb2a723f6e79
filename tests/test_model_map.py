"""The map of the model (helpers/model_map.py): its counts add up to the real model's, every arrow carries a shape,
"you are here" lands on the part asked for, and a part that is not on the map is a clear error."""

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from helpers.attention import GPTConfig
from helpers.model import GPT, preset
from helpers.model_map import BLOCK_PARTS, HIGHLIGHT, PARTS, draw_model_map, map_parts


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(fig, gid: str) -> list[str]:
    """The strings of the figure's texts whose gid starts with `gid`."""
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if (t.get_gid() or "").startswith(gid)]


def counts_on_figure(fig, n_layer: int) -> dict[str, int]:
    """Each part's parameter count as the figure writes it, times its copies (n_layer for a Block's sublayers)."""
    counts = {}
    for t in fig.findobj(matplotlib.text.Text):
        gid = t.get_gid() or ""
        if gid.startswith("params:"):
            name = gid.split(":", 1)[1]
            number = int(re.match(r"[\d,]+", t.get_text()).group().replace(",", ""))
            counts[name] = number * (n_layer if name in BLOCK_PARTS else 1)
    return counts


def numel(config: GPTConfig, tied: bool = True) -> int:
    with torch.device("meta"):
        model = GPT(config)
        if not tied:
            model.lm_head.weight = nn.Parameter(torch.empty_like(model.transformer.wte.weight))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("config, tied", [(preset("gpt2"), True), (preset("cpu"), True), (preset("cpu"), False),
                                          (preset("shakespeare-char", bias=False), True),
                                          (GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=2, n_embd=4), True)])
def test_the_counts_on_the_map_add_up_to_the_model(config, tied):
    fig = draw_model_map(config, tied=tied)
    counts = counts_on_figure(fig, config.n_layer)
    assert set(counts) == set(PARTS) - {"block"}  # every box writes its count
    assert sum(counts.values()) == numel(config, tied)
    assert texts(fig, "total") == [f"total: {numel(config, tied):,} parameters"]
    each = sum(part.params for part in map_parts(config, tied) if part.name in BLOCK_PARTS)
    block_text = next(t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text().startswith("Block ×"))
    assert f"Block × {config.n_layer} " in block_text and f"{each:,} parameters each" in block_text
    assert f"{config.n_layer * each:,} in all" in block_text


def test_the_map_follows_the_config():
    counts = {name: counts_on_figure(draw_model_map(preset(name)), preset(name).n_layer) for name in ("gpt2", "cpu")}
    assert counts["gpt2"]["wte"] == 50257 * 768 and counts["cpu"]["wte"] == 65 * 128
    assert counts["gpt2"]["lm_head"] == 0  # tied: the head adds nothing
    assert counts_on_figure(draw_model_map(preset("cpu"), tied=False), 4)["lm_head"] == 65 * 128


def test_every_arrow_has_its_shape():
    config = preset("cpu")
    shapes = texts(draw_model_map(config), "shape")
    for shape in ("(B, T)", "(T,)", "(T, 128)", "(B, T, 128)", "(B, T, 65)", "residual (B, T, 128)",
                  "(B, T, 128), after 4 blocks"):
        assert shape in shapes, shape
    assert shapes.count("(B, T, 128)") >= 8  # the stream, between every part from the embeddings to lm_head


def facecolour(fig, name: str) -> str:
    patch = next(p for p in fig.findobj(matplotlib.patches.Patch) if p.get_gid() == f"box:{name}")
    return mcolors.to_hex(patch.get_facecolor())


@pytest.mark.parametrize("here", ["attn", "mlp", "wte", "lm_head"])
def test_you_are_here_highlights_that_part_only(here):
    fig = draw_model_map(preset("cpu"), here=here)
    assert texts(fig, "you-are-here") == ["◀ you are here"] or texts(fig, "you-are-here") == ["you are here ▶"]
    lit = [name for name in PARTS if name != "block" and facecolour(fig, name) == HIGHLIGHT]
    assert lit == [here]


def test_several_parts_or_the_whole_block_can_be_highlighted():
    fig = draw_model_map(preset("gpt2"), here=["wte", "wpe", "ln_f", "lm_head"])
    assert len(texts(fig, "you-are-here")) == 4
    assert {name for name in PARTS if name != "block" and facecolour(fig, name) == HIGHLIGHT} == {
        "wte", "wpe", "ln_f", "lm_head"}
    block = draw_model_map(preset("cpu"), here="block")
    assert len(texts(block, "you-are-here")) == 1 and facecolour(block, "block") != facecolour(fig, "block")
    assert not texts(draw_model_map(preset("cpu")), "you-are-here")


@pytest.mark.parametrize("here", ["attention", ["attn", "MLP"], "transformer.h.0.attn"])
def test_a_part_that_is_not_on_the_map_is_a_clear_error(here):
    with pytest.raises(ValueError, match=r"is not a part of the map; use one of wte, wpe, block, ln_1, attn"):
        draw_model_map(preset("cpu"), here=here)
