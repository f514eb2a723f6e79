"""A map of the whole GPT, drawn from its config: every part, the shape on every arrow, every parameter count.

Hand-written, and above the lessons like the training engine: it reads the sizes from lesson 03's `GPTConfig`
and the counts from lesson 07's formulas, and no lesson module imports it. Lessons 03, 05 and 06 show it with
"you are here" on the part they build; the README shows GPT-2 small's:

    python -c "from helpers.model import preset; from helpers.model_map import draw_model_map; \
draw_model_map(preset('gpt2')).savefig('docs/model_map.png', dpi=110, bbox_inches='tight')"
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from helpers.attention import GPTConfig
from helpers.counting import attention_params, layernorm_params, mlp_params, param_breakdown

PARTS = ("wte", "wpe", "block", "ln_1", "attn", "ln_2", "mlp", "ln_f", "lm_head")  # GPT-2's module names
BLOCK_PARTS = ("ln_1", "attn", "ln_2", "mlp")  # repeated n_layer times
HIGHLIGHT = "#f4a261"  # the "you are here" colour
COLOURS = {"embedding": "#d8ead2", "norm": "#e8e8e8", "attn": "#d4e4f7", "mlp": "#f7e3c8", "head": "#e6d9f2"}


@dataclass(frozen=True)
class MapPart:
    """One box of the map: its name (GPT-2's), what it is, and its parameters (per copy, and how many copies)."""

    name: str
    title: str
    detail: str
    params: int
    copies: int = 1


def map_parts(config: GPTConfig, tied: bool = True) -> list[MapPart]:
    """The boxes of the map, in the order data flows through them, with their counts from lesson 07's formulas."""
    d, V, T, L = config.n_embd, config.vocab_size, config.block_size, config.n_layer
    ln = layernorm_params(config)
    head = param_breakdown(config, tied)["lm_head"]
    return [
        MapPart("wte", "wte: token embedding", f"{V:,} × {d:,}", V * d),
        MapPart("wpe", "wpe: position embedding", f"{T:,} × {d:,}", T * d),
        MapPart("ln_1", "ln_1: LayerNorm", "", ln, L),
        MapPart("attn", "attn: causal self-attention",
                f"{config.n_head} heads × {config.head_size}, c_attn and c_proj", attention_params(config), L),
        MapPart("ln_2", "ln_2: LayerNorm", "", ln, L),
        MapPart("mlp", "mlp: c_fc, GELU, c_proj", f"{d:,} → {4 * d:,} → {d:,}", mlp_params(config), L),
        MapPart("ln_f", "ln_f: final LayerNorm", "", ln),
        MapPart("lm_head", "lm_head: scores for every token", "tied to wte" if tied else f"{d:,} × {V:,}", head),
    ]


def check_here(here: str | Iterable[str] | None) -> set[str]:
    """The parts to highlight, as a set; ValueError for a name that is not on the map."""
    names = set() if here is None else {here} if isinstance(here, str) else set(here)
    unknown = sorted(str(name) for name in names - set(PARTS))
    if unknown:
        raise ValueError(f"here={unknown[0]!r} is not a part of the map; use one of {', '.join(PARTS)} "
                         "(GPT-2's module names), a list of them, or None")
    return names


class _Canvas:
    """Boxes, circles and labelled arrows on one matplotlib axes, in data units (x 0..11, y 0..15)."""

    def __init__(self, ax, here: set[str]):
        self.ax, self.here = ax, here

    def box(self, x: float, y: float, width: float, part: MapPart, kind: str, height: float = 0.8,
            label_left: bool = False) -> None:
        """A box centred at (x, y): its title, a detail line, and its parameter count (a text with gid params:NAME).
        When highlighted, "you are here" goes to its right (or its left, with label_left)."""
        lit = part.name in self.here
        self.ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, gid=f"box:{part.name}",
                                         boxstyle="round,pad=0.02,rounding_size=0.12", linewidth=2.5 if lit else 1,
                                         facecolor=HIGHLIGHT if lit else COLOURS[kind], edgecolor="black"))
        lines = [part.title] + ([part.detail] if part.detail else [])
        self.ax.text(x, y + 0.14, "\n".join(lines), ha="center", va="center", fontsize=8.5)
        count = "0 new parameters" if part.params == 0 else f"{part.params:,} parameters"
        self.ax.text(x, y - height / 2 + 0.12, count, ha="center", va="bottom", fontsize=8, color="#333333",
                     gid=f"params:{part.name}")
        if lit:
            self.you_are_here(x - width / 2 - 0.1 if label_left else x + width / 2 + 0.1, y, label_left)

    def you_are_here(self, x: float, y: float, left: bool = False) -> None:
        self.ax.text(x, y, "you are here ▶" if left else "◀ you are here", ha="right" if left else "left",
                     va="center", fontsize=10, fontweight="bold", color="#c0392b", gid="you-are-here")

    def plus(self, x: float, y: float) -> None:
        self.ax.add_patch(Circle((x, y), 0.2, facecolor="white", edgecolor="black"))
        self.ax.text(x, y, "+", ha="center", va="center", fontsize=12)

    def arrow(self, start: tuple[float, float], end: tuple[float, float], shape: str,
              offset: tuple[float, float] = (0.12, 0.0)) -> None:
        """An arrow from start to end with the tensor shape written beside its middle (moved by `offset`)."""
        self.ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color="black", lw=1.2))
        if shape:
            x, y = (start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1]
            self.ax.text(x, y, shape, ha="left", va="center", fontsize=8, color="#1f4e79", family="monospace",
                         gid="shape")


def residual(ax, canvas: _Canvas, cx: float, leave: float, join: float, stream: str) -> None:
    """The residual connection: the stream leaves the main column at y=leave and is added back at y=join."""
    ax.plot([cx, 1.5, 1.5], [leave, leave, join], color="#555555", lw=1.2)
    canvas.arrow((1.5, join), (cx - 0.2, join), "")
    ax.text(1.4, (leave + join) / 2, f"residual {stream}", rotation=90, ha="right", va="center", fontsize=7.5,
            color="#1f4e79", family="monospace", gid="shape")


def draw_model_map(config: GPTConfig, here: str | Iterable[str] | None = None, tied: bool = True) -> Figure:
    """Draw the whole GPT of `config`: embeddings, the Block and its sublayers (repeated n_layer times), ln_f and
    lm_head, with the tensor shape on every arrow and the parameter count of every part.

    `here` names the part(s) to highlight with "you are here": one of PARTS ("attn", "block", ...), a list of
    them, or None. `tied` says whether lm_head shares wte's matrix (GPT's default). Returns the figure."""
    lit = check_here(here)
    parts = {part.name: part for part in map_parts(config, tied)}
    d, V, L = config.n_embd, config.vocab_size, config.n_layer
    stream = f"(B, T, {d})"
    fig, ax = plt.subplots(figsize=(8.6, 10.5))
    ax.set(xlim=(0, 12), ylim=(-0.3, 15.2))
    ax.axis("off")
    canvas, cx = _Canvas(ax, lit), 4.2  # cx: the x of the main column, where the residual stream flows

    ax.text(cx, 14.75, "idx: token ids", ha="center", va="center", fontsize=9)
    ax.text(8.3, 14.75, "positions 0 … T-1", ha="center", va="center", fontsize=9)
    canvas.arrow((cx, 14.5), (cx, 13.9), "(B, T)")
    canvas.arrow((8.3, 14.5), (8.3, 13.9), "(T,)")
    canvas.box(cx, 13.45, 3.6, parts["wte"], "embedding", label_left=True)
    canvas.box(8.3, 13.45, 3.0, parts["wpe"], "embedding")
    canvas.plus(cx, 12.3)
    canvas.arrow((cx, 13.05), (cx, 12.5), stream)
    canvas.arrow((8.3, 13.05), (cx + 0.2, 12.3), f"(T, {d})", offset=(-0.1, 0.3))

    top, bottom, right = 11.9, 4.15, 8.6  # the Block's frame
    block_lit = "block" in lit
    ax.add_patch(FancyBboxPatch((0.9, bottom), right - 0.9, top - bottom, boxstyle="round,pad=0.02,rounding_size=0.2",
                                facecolor="#fdf0e2" if block_lit else "#fafafa", gid="box:block",
                                edgecolor=HIGHLIGHT if block_lit else "#777777", linewidth=3 if block_lit else 1.2,
                                linestyle="-" if block_lit else "--"))
    block_params = sum(parts[name].params for name in BLOCK_PARTS)
    ax.text(right - 0.12, top - 0.15, f"Block × {L}  (h.0 … h.{L - 1})\n{block_params:,} parameters each\n"
            f"{L * block_params:,} in all", ha="right", va="top", fontsize=8.5, fontweight="bold", linespacing=1.4)
    if block_lit:
        canvas.you_are_here(right + 0.1, (top + bottom) / 2)

    canvas.arrow((cx, 12.1), (cx, 10.95), stream)
    canvas.box(cx, 10.65, 3.6, parts["ln_1"], "norm", 0.6)
    canvas.arrow((cx, 10.35), (cx, 9.975), stream)
    canvas.box(cx, 9.5, 3.6, parts["attn"], "attn", 0.95)
    canvas.arrow((cx, 9.025), (cx, 8.65), stream)
    canvas.plus(cx, 8.45)
    residual(ax, canvas, cx, 11.3, 8.45, stream)
    canvas.arrow((cx, 8.25), (cx, 7.65), stream)
    canvas.box(cx, 7.35, 3.6, parts["ln_2"], "norm", 0.6)
    canvas.arrow((cx, 7.05), (cx, 6.675), stream)
    canvas.box(cx, 6.2, 3.6, parts["mlp"], "mlp", 0.95)
    canvas.arrow((cx, 5.725), (cx, 5.35), stream)
    canvas.plus(cx, 5.15)
    residual(ax, canvas, cx, 8.0, 5.15, stream)
    canvas.arrow((cx, 4.95), (cx, 3.55), f"{stream}, after {L} blocks", offset=(0.12, -0.4))

    canvas.box(cx, 3.25, 3.6, parts["ln_f"], "norm", 0.6)
    canvas.arrow((cx, 2.95), (cx, 2.35), stream)
    canvas.box(cx, 1.9, 3.6, parts["lm_head"], "head", 0.9)
    canvas.arrow((cx, 1.45), (cx, 0.85), f"(B, T, {V})")
    ax.text(cx, 0.6, "logits: a score for every token of the vocabulary", ha="center", va="center", fontsize=9)
    total = sum(part.params * part.copies for part in parts.values())
    ax.text(cx, 0.05, f"total: {total:,} parameters", ha="center", va="center", fontsize=10, fontweight="bold",
            gid="total")
    ax.set_title(f"GPT: n_layer={L}, n_head={config.n_head}, n_embd={d}, vocab_size={V}, block_size="
                 f"{config.block_size}, bias={config.bias}", fontsize=9.5)
    fig.tight_layout()
    return fig
