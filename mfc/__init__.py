"""mfc: a compiler for declarative neural-network specs."""

__version__ = "0.1.0"
__all__ = ["compile", "load", "Model", "Program", "SpecError", "DataError", "SettingError",
           "MfcError", "Diagnostic", "Span"]


def compile(text: str, filename: str = "<string>", *, backend: str = "numpy",
            device: str | None = None, **settings):
    """Compile spec text into a `Model` (its checked `Program` is `.program`); raise
    `SpecError` on errors.

    `settings` replace the train block's (`data="iris"`, `loss=...`, `epochs=5`), as the
    command line's flags do; a bad value raises SettingError (a ValueError). `backend`
    runs it: "numpy" (generated code), "miniflow" (the lesson's node runtime) or
    "torch" (PyTorch, on `device`: "cpu", "cuda", "mps")."""
    from mfc.lang.compiler import compile_text
    from mfc.model import Model

    return Model(compile_text(text, filename, **settings), backend=backend,
                 **_options(device))


def load(path, *, backend: str = "numpy", device: str | None = None, **settings):
    """Read and compile the spec at `path` (with `backend`, `device` and `settings` as
    in `compile`); raise `SpecError` on errors, OSError on I/O, UnicodeDecodeError for
    text that is not UTF-8."""
    from mfc.lang.compiler import compile_file
    from mfc.model import Model

    return Model(compile_file(path, **settings), backend=backend, **_options(device))


def _options(device: str | None) -> dict:
    return {} if device is None else {"device": device}


# Imported on first use, so that `import mfc` (and the command's start: mfc.start)
# costs next to nothing.
_DIAGNOSTICS = ("DataError", "Diagnostic", "MfcError", "SettingError", "SpecError", "Span")


def __getattr__(name):
    if name in _DIAGNOSTICS:
        from mfc import diagnostics

        return getattr(diagnostics, name)
    if name == "Model":
        from mfc.model import Model

        return Model
    if name == "Program":
        from mfc.ir import Program

        return Program
    raise AttributeError(f"module 'mfc' has no attribute {name!r}")
