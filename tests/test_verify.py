"""The verifier's own rules: it shares no code with what it verifies, compares at the printed
precision, reads the report's tables and links back, and refuses a claim it has no rule for.
(It is run end to end against a real report in ``test_report.py``.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.config import ROOT
from verify import document
from verify.evidence import Evidence, apply, label_from, tokens
from verify.forensics import space_size
from verify.original import ROWS, distance, interval, verdict, welch_p
from verify.tally import Tally, tolerance


def test_the_verifier_imports_nothing_of_the_product() -> None:
    for path in (ROOT / "verify").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not [n for n in names if n.split(".")[0] in ("pipeline", "sweeps")], path


@pytest.mark.parametrize(
    ("shown", "half"),
    [("97.42", 0.005), ("0.2", 0.05), ("5", 0.5), ("1.5e-07", 0.05e-7), ("-5.529e-06", 5e-10)],
)
def test_a_number_agrees_within_half_a_unit_of_its_last_printed_digit(shown, half) -> None:
    assert tolerance(shown) == pytest.approx(half)
    t = Tally()
    t.number("x", shown, float(shown) + 0.9 * half)
    assert not t.disagreements
    t.number("y", shown, float(shown) + 1.1 * half)
    assert len(t.disagreements) == 1 and "y: the report says" in t.disagreements[0]
    assert t.checked == 2


def test_missing_numbers_words_and_lists() -> None:
    t = Tally()
    t.number("a", "-", float("nan"))  # "-" is what the report prints for no number
    t.number("b", "-", 1.0)
    t.number("c", "0.5", None)
    t.word("d", "better", "worse")
    t.numbers("e", "97.40 / 97.43", [97.4, 97.43])
    t.numbers("f", "1 / 2", [1.0, 2.0, 3.0])
    assert [d.split(":")[0] for d in t.disagreements] == ["b", "c", "d", "f"]


def test_the_markdown_is_read_back_with_its_tables_and_links(tmp_path: Path) -> None:
    run = "0123456789abcdef0123456789abcdef"
    md = tmp_path / "report.md"
    md.write_text(
        "# Title\n\n- [A](#a)\n\n## A\n\nOne sentence with 3 numbers.\n\n**A table**\n\n"
        "| name   |   value | runs |\n|:-------|--------:|:-----|\n"
        f"| x      |    1.25 | [01234567](http://h/#/experiments/1/runs/{run}) |\n\n"
        "![a figure](figures/f.png)\n\n*a figure*\n"
    )
    sections = document.read(md)
    a = sections["A"]
    assert a.lines == ["One sentence with 3 numbers."]
    (table,) = a.tables
    assert table.caption == "A table" and table.rows[0]["value"] == "1.25"
    assert document.run_ids(table.rows[0]["runs"]) == [run]


def test_a_sentence_with_a_number_and_no_rule_is_a_disagreement() -> None:
    t = Tally()
    ev = Evidence(records=None, tally=t)
    section = document.Section("S", ["A rule we know: 1.", "Something new: 42%.", "No digits."])
    ev.sentences(section, [(r"A rule we know: (\d)\.", lambda m: t.number("known", m[1], 1))])
    assert t.checked == 2 and len(t.disagreements) == 1
    assert "no rule verifies 'Something new: 42%.'" in t.disagreements[0]


def test_its_own_transcription_and_rules() -> None:
    assert ROWS["5.1 L2, lambda 0.01"] == ("l2", 95.79, 0.155, 5)
    assert distance("5.1 L2, lambda 0.01", 95.79, 0.155, 5) == 0
    assert distance("5.1 L2, lambda 0.01", 96.29, 0.155 * 1.1, 7) == pytest.approx(1.0)
    assert distance("5.2 L1, lambda 0.01", 95.18, 0.1649, 50) == 0  # no stop epoch given
    low, high = interval([97.40, 97.43, 97.44])
    assert low < 97.42 < high and verdict([97.40, 97.43, 97.44], 97.45) == "within the seed spread"
    assert verdict([96.01, 95.96, 95.99], 95.79) == "better"
    from scipy import stats

    a, b = [97.9, 97.7, 98.0], [89.6, 89.7, 89.5]
    assert welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_labels_and_parameters() -> None:
    params = {"trainer.stopping": "rises", "trainer.patience": "3", "trainer.monitor": "val_loss"}
    fixed = apply(params, "stopping=none ep=5")
    assert fixed == {"trainer.stopping": "none", "trainer.epochs": "5"}  # as such runs record
    assert tokens("as it stands") == set() and tokens("a=1 b=2") == {"a=1", "b=2"}
    stands = {"model.init": "glorot", "trainer.stopping": "rises"}
    assert label_from({"model.init": "uniform", "trainer.stopping": "rises"}, stands) == {
        "init=uniform"
    }
    space = {
        "trainer.stopping": {"choices": ["none", "rises", "patience"]},
        "trainer.epochs": {"choices": [5], "when": {"trainer.stopping": ["none"]}},
        "trainer.monitor": {
            "choices": ["a", "b"],
            "when": {"trainer.stopping": ["rises", "patience"]},
        },
        "model.init": {"choices": ["glorot", "normal", "uniform"]},
    }
    assert space_size(space) == (1 + 2 * 2) * 3  # monitor only where stopping watches
