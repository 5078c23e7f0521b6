"""mfc.diagnostics: the table of codes, kept together with docs/errors.md; rendering."""

import re
from pathlib import Path

import pytest

from mfc import diagnostics
from mfc.diagnostics import CODES, Diagnostic, Report, Span

ERRORS_MD = Path(__file__).parent.parent / "docs" / "errors.md"


def documented_codes() -> dict[str, str]:
    """code → the section of docs/errors.md that explains it."""
    found, section = {}, None
    for line in ERRORS_MD.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line
        match = re.match(r"\| ([EW]\d{3}) \|", line)
        if match:
            found[match.group(1)] = section
    return found


def test_every_code_in_the_table_is_documented_and_every_documented_one_exists():
    assert set(CODES) == set(documented_codes())


def test_warnings_are_documented_as_warnings_and_errors_as_errors():
    for code, section in documented_codes().items():
        assert ("Warnings" in section) == (CODES[code].severity == "warning"), code


def test_each_code_is_declared_once_with_a_title():
    declared = [v for v in vars(diagnostics).values() if isinstance(v, diagnostics.Code)]
    assert len(declared) == len(CODES)
    assert all(code.title for code in declared)


def test_a_code_outside_the_table_is_a_bug_not_a_diagnostic():
    with pytest.raises(ValueError, match="not a diagnostic code"):
        Diagnostic("E999", "made up", None)


def test_a_report_counts_its_errors_not_its_warnings():
    report = Report()
    report(diagnostics.W001, "w", Span.point(2, 1))
    report(diagnostics.E200, "e", Span.point(1, 3))
    report(diagnostics.E101, "e", None)
    assert report.errors == 2
    assert [d.code for d in report.sorted()] == ["E101", "E200", "W001"]


def test_a_code_is_its_string():
    diagnostic = Diagnostic(diagnostics.E200, "m", Span.point(1, 1))
    assert diagnostic.code == "E200" and diagnostic.to_dict("f")["code"] == "E200"
    assert diagnostic.severity == "error" and diagnostic.code.title == "shape mismatch"
