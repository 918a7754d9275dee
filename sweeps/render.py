"""The report's content: pandas tables, matplotlib figures, generated text, Markdown and HTML.

Everything here is computed from collected runs; no sentence states a number it did not read.
A report is a list of ``Section``s, rendered twice: ``report.md`` (figures as files beside it)
and a self-contained ``report.html`` (figures inlined).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipeline import plots

# The report's results (its sections 2, 4, 5 and 6): test accuracy, test loss, stop epoch.
REPORT = pd.DataFrame(
    [
        ("softmax", "2 Softmax regression", 0.9251, 0.27, 20),
        ("momentum", "4 Momentum (tanh)", 0.9745, 0.08, 31),
        ("l2", "5.1 L2, lambda 0.01", 0.9579, 0.155, 5),
        ("l1", "5.2 L1, lambda 0.01", 0.9518, 0.1649, None),
        ("sigmoid", "6.1 Sigmoid", 0.9743, 0.0823, 27),
        ("relu", "6.2 ReLU", 0.9769, 0.0794, 17),
    ],
    columns=["preset", "section", "report_accuracy", "report_loss", "report_stop_epoch"],
).set_index("preset")
NEAR_ZERO = 1e-3  # |w| below this counts as a zero weight in the sparsity comparison


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)


def comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment: the report's numbers beside ours (mean, sd, per seed) and a
    verdict. "within the seed spread" means the report's accuracy lies within two standard
    deviations of our mean (at least 0.1 point, as three seeds can agree by chance)."""
    rows = []
    for preset, report in REPORT.iterrows():
        ours = runs[runs["preset"] == preset].sort_values("seed")
        if ours.empty:
            continue
        acc = ours["test_accuracy"] * 100
        mean, sd = acc.mean(), acc.std(ddof=1) if len(acc) > 1 else 0.0
        diff = mean - report["report_accuracy"] * 100
        margin = max(2 * sd, 0.1)
        verdict = (
            "within the seed spread" if abs(diff) <= margin else ("better" if diff > 0 else "worse")
        )
        rows.append(
            {
                "experiment": report["section"],
                "report acc %": report["report_accuracy"] * 100,
                "ours acc % (mean)": round(mean, 2),
                "ours acc % (sd)": round(sd, 2),
                "ours acc % (seeds)": " / ".join(f"{a:.2f}" for a in acc),
                "diff (points)": round(diff, 2),
                "verdict": verdict,
                "report loss": report["report_loss"],
                "ours loss": round(ours["test_loss"].mean(), 4),
                "report stop epoch": "-"
                if pd.isna(report["report_stop_epoch"])
                else str(int(report["report_stop_epoch"])),
                "ours stop epochs": " / ".join(str(int(e)) for e in ours["stopped_epoch"]),
                "ours best epochs": " / ".join(str(int(e)) for e in ours["best_epoch"]),
            }
        )
    return pd.DataFrame(rows)


def comparison_text(table: pd.DataFrame) -> list[str]:
    lines = []
    for _, row in table.iterrows():
        lines.append(
            f"{row['experiment']}: report {row['report acc %']:.2f}%, ours "
            f"{row['ours acc % (mean)']:.2f}% ± {row['ours acc % (sd)']:.2f} "
            f"({row['diff (points)']:+.2f} points): {row['verdict']}; stopped at epochs "
            f"{row['ours stop epochs']} (report: {row['report stop epoch']})."
        )
    counts = table["verdict"].value_counts()
    lines.append(
        f"In all, {counts.get('within the seed spread', 0)} of {len(table)} experiments agree "
        f"with the report within the seed spread, {counts.get('better', 0)} do better and "
        f"{counts.get('worse', 0)} worse."
    )
    return lines


def curves_figure(history: pd.DataFrame, best_epoch: int, title: str, path: Path) -> Path:
    return plots.curves(history.to_dict("records"), best_epoch, title, path)


def activation_figure(runs: pd.DataFrame, histories: dict[str, pd.DataFrame], path: Path) -> Path:
    """Validation loss per epoch (seed 0) and test accuracy (all seeds) per activation."""
    names = {"sigmoid": "sigmoid", "momentum": "tanh", "relu": "ReLU"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for preset, label in names.items():
        if preset in histories:
            h = histories[preset]
            left.plot(np.arange(1, len(h) + 1), h["val_loss"], label=label)
    left.set(
        xlabel="epoch", ylabel="validation loss", yscale="log", title="validation loss (seed 0)"
    )
    left.legend()
    left.grid(alpha=0.3)
    accs = [runs[runs["preset"] == p]["test_accuracy"] * 100 for p in names]
    right.boxplot(accs, tick_labels=list(names.values()))
    for i, p in enumerate(names):
        right.scatter([i + 1] * len(accs[i]), accs[i], s=12)
        report = REPORT.loc[p, "report_accuracy"] * 100
        right.plot(
            [i + 0.75, i + 1.25], [report] * 2, "r--", lw=1, label="report" if i == 0 else None
        )
    right.set(ylabel="test accuracy %", title="test accuracy over seeds")
    right.legend()
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sparsity(weights: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    """Share of near-zero weights (|w| < 1e-3) per regularizer, over every seed's weights."""
    rows = []
    for preset, arrays in weights.items():
        fractions = [float(np.mean(np.abs(w) < NEAR_ZERO)) for w in arrays]
        rows.append(
            {
                "experiment": preset,
                "seeds": len(arrays),
                "near-zero weights % (mean)": round(100 * np.mean(fractions), 2),
                "near-zero weights % (seeds)": " / ".join(f"{100 * f:.2f}" for f in fractions),
                "median |w|": float(np.median(np.abs(np.concatenate(arrays)))),
            }
        )
    return pd.DataFrame(rows)


def sparsity_figure(weights: dict[str, list[np.ndarray]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    bins = np.logspace(-8, 1, 91)
    for preset, arrays in weights.items():
        ax.hist(np.abs(arrays[0]), bins=bins, histtype="step", lw=1.5, label=preset)
    ax.axvline(NEAR_ZERO, color="grey", ls=":", label=f"|w| = {NEAR_ZERO:g}")
    ax.set(
        xscale="log",
        xlabel="|w| (all weights, seed 0)",
        ylabel="count",
        title="Weight magnitudes: L1 against L2 and no penalty",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sparsity_text(table: pd.DataFrame) -> list[str]:
    by = table.set_index("experiment")["near-zero weights % (mean)"]
    if not {"l1", "l2"} <= set(by.index):
        return []
    answer = "yes" if by["l1"] > by["l2"] else "no"
    return [
        f"Does L1 give sparser weights than L2? {answer}: {by['l1']:.2f}% of the L1 "
        f"network's weights are below {NEAR_ZERO:g} in magnitude, against {by['l2']:.2f}% "
        f"with L2" + (f" and {by['momentum']:.2f}% with no penalty." if "momentum" in by else ".")
    ]


def gradcheck_text(rows: pd.DataFrame) -> list[str]:
    worst = rows["abs_difference"].max()
    report_over = int((rows["report_abs_difference"] > 1e-4).sum())
    return [
        f"Largest difference between backprop and the numerical gradient: {worst:.2e} "
        f"({'within' if worst < 1e-4 else 'above'} the 1e-4 bound for epsilon 1e-2). The "
        f"report's own table has {report_over} of 6 rows above that bound."
    ]


def write_markdown(title: str, sections: list[Section], folder: Path) -> Path:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        out += [*(f"{line}\n" for line in s.text)]
        for caption, table in s.tables:
            out += [f"**{caption}**", "", table.to_markdown(index=False, floatfmt=".4g"), ""]
        for caption, path in s.figures:
            out += [f"![{caption}]({path.relative_to(folder)})", "", f"*{caption}*", ""]
    path = folder / "report.md"
    path.write_text("\n".join(out))
    return path


def write_html(title: str, sections: list[Section], folder: Path) -> Path:
    """One file, figures inlined as base64, so it can be mailed or attached as it is."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [f"<p>{html.escape(line)}</p>" for line in s.text]
        for caption, table in s.tables:
            body.append(f"<h4>{html.escape(caption)}</h4>")
            body.append(table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0))
        for caption, path in s.figures:
            data = base64.b64encode(path.read_bytes()).decode()
            body.append(
                f'<figure><img alt="{html.escape(caption)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
                "</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
        "td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}"
        "img{max-width:100%}figcaption{font-style:italic;color:#555}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    path = folder / "report.html"
    path.write_text(page)
    return path
