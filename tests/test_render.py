"""Tests for mfc.render: DOT text to image bytes through an external renderer."""

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mfc.draw import render as render_mod
from mfc.draw.render import RenderError, available_formats, find_renderer, render

SMALL = 'digraph G { x [label="x (4, 2)"]; y [label="tanh"]; x -> y; }'
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"

# Labels the draw module must escape; this DOT is escaped by hand the way it should.
HOSTILE = r'''digraph G {
  a [label="say \"hi\" \\ back\\slash {brace} <lt> >gt & amp | pipe"];
  b [label="line1\nline2\lleft\l"];
  c [label="σ(x) → ∑ é 中文 😀"];
  d [label=<<b>bold</b> &lt;x&gt; &amp; α<br/>next>];
  e [shape=record, label="{in|\{esc\}|\<p\>}"];
  a -> b -> c -> d -> e;
}'''


def renderer_or_skip(fmt):
    if find_renderer(fmt) is None:
        pytest.skip(f"no renderer for {fmt} on this machine")


@pytest.fixture
def no_system_dot(monkeypatch):
    monkeypatch.setattr(render_mod, "_system_dot", lambda: None)


@pytest.fixture
def no_renderer(monkeypatch, no_system_dot):
    monkeypatch.setattr(render_mod, "_graphviz_pure", lambda: None)


@pytest.fixture
def fake_renderer(monkeypatch, tmp_path):
    """Make every format render with a shell script whose body the test writes."""
    if sys.platform == "win32":
        pytest.skip("fake renderer is a POSIX shell script")
    script = tmp_path / "fake-dot"

    def install(body):
        script.write_text("#!/bin/sh\n" + body + "\n")
        script.chmod(0o755)
        monkeypatch.setattr(render_mod, "find_renderer", lambda fmt: script)
    return install


def assert_one_line(err):
    message = str(err.value)
    assert message and "\n" not in message and "Traceback" not in message


# ---- passthrough ------------------------------------------------------------------------

def test_dot_format_returns_source_bytes(no_renderer):
    assert render(SMALL + " // ünï", "dot") == (SMALL + " // ünï").encode("utf-8")


def test_dot_format_always_available(no_renderer):
    assert available_formats() == {"dot"}


def test_unknown_format_is_render_error():
    with pytest.raises(RenderError, match="unknown format") as err:
        render(SMALL, "gif")
    assert_one_line(err)


# ---- real rendering ---------------------------------------------------------------------

def test_svg_is_xml_with_the_nodes():
    renderer_or_skip("svg")
    root = ET.fromstring(render(SMALL, "svg"))
    assert root.tag == f"{SVG_NS}svg"
    titles = {t.text for t in root.iter(f"{SVG_NS}title")}
    assert {"x", "y", "x->y"} <= titles


def test_png_starts_with_magic_bytes():
    renderer_or_skip("png")
    assert render(SMALL, "png").startswith(PNG_MAGIC)


def test_hostile_labels_render_as_text():
    renderer_or_skip("svg")
    root = ET.fromstring(render(HOSTILE, "svg"))
    texts = " | ".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    for expected in ['say "hi" \\ back\\slash {brace} <lt> >gt & amp', "line1", "left",
                     "σ(x) → ∑ é 中文 😀", "bold", "{esc}", "<p>"]:
        assert expected in texts


def test_invalid_dot_is_render_error_with_renderer_message():
    renderer_or_skip("svg")
    with pytest.raises(RenderError, match="syntax error") as err:
        render("digraph { a -> }", "svg")
    assert_one_line(err)


def test_empty_source_is_render_error():
    renderer_or_skip("svg")
    with pytest.raises(RenderError, match="no output"):
        render("", "svg")


# ---- missing renderers ------------------------------------------------------------------

def test_pdf_without_system_dot_says_install_graphviz(no_system_dot, monkeypatch):
    monkeypatch.setattr(render_mod, "_graphviz_pure", lambda: Path("/opt/graphviz-pure"))
    assert find_renderer("pdf") is None
    assert available_formats() == {"dot", "svg", "png"}
    with pytest.raises(RenderError) as err:
        render(SMALL, "pdf")
    assert_one_line(err)
    assert "pdf" in str(err.value) and "install Graphviz" in str(err.value)


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_no_renderer_at_all_says_pip_install(no_renderer, fmt):
    with pytest.raises(RenderError) as err:
        render(SMALL, fmt)
    assert_one_line(err)
    assert "pip install graphviz-pure" in str(err.value)
    assert "install Graphviz" in str(err.value)


def test_system_dot_is_preferred(monkeypatch):
    monkeypatch.setattr(render_mod, "_system_dot", lambda: Path("/usr/bin/dot"))
    monkeypatch.setattr(render_mod, "_graphviz_pure", lambda: Path("/opt/graphviz-pure"))
    assert find_renderer("svg") == Path("/usr/bin/dot")
    assert find_renderer("pdf") == Path("/usr/bin/dot")
    assert find_renderer("dot") is None


def test_graphviz_pure_found_outside_path(monkeypatch, no_system_dot):
    """An unactivated venv: the interpreter's scripts folder is searched, not just PATH."""
    beside_python = Path(sys.executable).parent / "graphviz-pure"
    if not os.access(beside_python, os.X_OK):
        pytest.skip("graphviz-pure is not installed beside this interpreter")
    monkeypatch.setenv("PATH", "")
    assert find_renderer("svg") is not None


# ---- renderer misbehaving ---------------------------------------------------------------

def test_failure_reports_the_error_line_not_warnings(fake_renderer):
    fake_renderer('echo "Warning: odd shape" >&2; echo "Error: it broke" >&2; '
                  'echo "more detail" >&2; exit 3')
    with pytest.raises(RenderError) as err:
        render(SMALL, "svg")
    assert_one_line(err)
    assert str(err.value).endswith("fake-dot failed: it broke")


def test_failure_without_stderr_reports_exit_status(fake_renderer):
    fake_renderer("exit 7")
    with pytest.raises(RenderError, match="exit status 7"):
        render(SMALL, "png")


def test_partial_output_on_failure_is_not_returned(fake_renderer):
    fake_renderer('printf "<svg>"; echo "Error: mismatched tag" >&2; exit 1')
    with pytest.raises(RenderError, match="mismatched tag"):
        render(SMALL, "svg")


def test_success_passes_stdout_through(fake_renderer):
    fake_renderer('cat; echo "Warning: ignored" >&2')
    assert render(SMALL, "svg") == SMALL.encode("utf-8")


def test_timeout_is_render_error(fake_renderer):
    fake_renderer("exec sleep 10")
    with pytest.raises(RenderError, match="longer than 0.3 s") as err:
        render(SMALL, "svg", timeout=0.3)
    assert_one_line(err)


def test_unrunnable_renderer_is_render_error(monkeypatch, tmp_path):
    missing = tmp_path / "gone"
    monkeypatch.setattr(render_mod, "find_renderer", lambda fmt: missing)
    with pytest.raises(RenderError, match="could not run") as err:
        render(SMALL, "svg")
    assert_one_line(err)
