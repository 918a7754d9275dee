"""Sigmoid, tanh and ReLU side by side (the report's section 6)."""

from __future__ import annotations

from sweeps.original import ACTIVATION_PRESETS, ROWS
from sweeps.report import figures
from sweeps.report.context import Context
from sweeps.report.document import Section


def section(ctx: Context) -> Section | None:
    presets = {label: p for label, p in ACTIVATION_PRESETS.items() if (p, 0) in ctx.histories}
    if len(presets) < 2:
        return None
    fig = figures.figure(11, 4, columns=2)
    left, right = fig.axes
    for label, preset in presets.items():
        histories = [ctx.histories[k] for k in sorted(ctx.histories) if k[0] == preset]
        figures.band(left, histories, "val_loss", label=label)
    left.set(
        ylabel="validation loss",
        yscale="log",
        title=f"validation loss, mean ± sd over {len(ctx.seeds)} seed(s)",
    )
    figures.epochs_axis(left)
    left.legend()
    accs = [
        ctx.runs[ctx.runs.group == p]["test_accuracy"].to_numpy() * 100 for p in presets.values()
    ]
    right.boxplot(accs, tick_labels=list(presets))
    for i, preset in enumerate(presets.values()):
        right.scatter([i + 1] * len(accs[i]), accs[i], s=12)
        original = ROWS.loc[preset, "accuracy"] * 100
        right.plot(
            [i + 0.75, i + 1.25], [original] * 2, "r--", lw=1, label="original" if i == 0 else None
        )
    right.set(ylabel="test accuracy %", title="test accuracy over seeds")
    right.legend()
    right.grid(alpha=0.3)
    path = figures.save(fig, ctx.figures / "activations.png")
    means = {label: acc.mean() for label, acc in zip(presets, accs)}
    ranked = sorted(means, key=means.get, reverse=True)
    text = [
        "With the original's hand-picked learning rates, "
        + ", ".join(f"{label} reaches {means[label]:.2f}%" for label in ranked)
        + f" on average over {len(ctx.seeds)} seed(s); see the tuning section for each at its best."
    ]
    return Section("Activations compared", text, [], [("Sigmoid, tanh and ReLU", path)])
