"""mfc: a compiler for declarative neural-network specs."""

from mfc.diagnostics import DataError, Diagnostic, SpecError, Span

__version__ = "0.1.0"
__all__ = ["compile", "load", "Program", "SpecError", "DataError", "Diagnostic", "Span"]


def compile(text: str, filename: str = "<string>"):
    """Compile spec text into a checked `Program`; raise `SpecError` on errors."""
    from mfc.compiler import compile_text

    return compile_text(text, filename)


def load(path):
    """Read and compile the spec at `path`; raise `SpecError` on errors, OSError on I/O."""
    from mfc.compiler import compile_file

    return compile_file(path)


def __getattr__(name):
    if name == "Program":
        from mfc.program import Program

        return Program
    raise AttributeError(f"module 'mfc' has no attribute {name!r}")
