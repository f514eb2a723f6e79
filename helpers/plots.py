"""Small matplotlib helpers that the lessons share. Infrastructure, not taught in a lesson."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt


def new_figure(width: float = 6.0, height: float = 3.5, ncols: int = 1):
    """A figure with `ncols` axes side by side, sized for a notebook."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0]) if ncols > 1 else axes[0][0]


def plot_curves(curves: dict[str, Sequence[float]], *, xlabel: str = "step", ylabel: str = "loss",
                title: str = "", x: Sequence[float] | None = None, ax=None):
    """Line plot of several named curves sharing one x axis."""
    if ax is None:
        _, ax = new_figure()
    for label, ys in curves.items():
        ax.plot(list(x) if x is not None else range(len(ys)), list(ys), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_heatmap(matrix, *, row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
                 title: str = "", cmap: str = "viridis", ax=None, annotate: bool = False):
    """Heatmap of a 2-D array or tensor, with optional tick labels and values written in the cells."""
    if ax is None:
        _, ax = new_figure(5, 4)
    data = matrix.detach().cpu().float().numpy() if hasattr(matrix, "detach") else matrix
    image = ax.imshow(data, cmap=cmap, aspect="auto")
    if row_labels is not None:
        ax.set_yticks(range(len(row_labels)), labels=list(row_labels))
    if col_labels is not None:
        ax.set_xticks(range(len(col_labels)), labels=list(col_labels), rotation=90)
    if annotate:
        for i in range(data.shape[0]):
            for j in range(data.shape[1]):
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", color="w", fontsize=8)
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax)
    return ax


def plot_bars(values: dict[str, float], *, ylabel: str = "", title: str = "", log: bool = False, ax=None):
    """Bar chart of named values."""
    if ax is None:
        _, ax = new_figure()
    ax.bar(list(values), list(values.values()))
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    return ax
