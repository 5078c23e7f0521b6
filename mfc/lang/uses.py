"""Stage 1b: the fragments a spec may call: its own, and those of the files it uses.

`use "layers.mf"` names a file by its path, relative to the file that says it; `use std`
names a library shipped with mfc (mfc/lang/std.mf). Each file is read and parsed once,
whatever the number of uses; a used file may use others. Reported here, each at its
place in its own file: a file that cannot be read or parsed (E140, or its syntax
errors), a cycle of uses (E121), a used file that defines more than fragments (E141), a
fragment defined twice or named like an op (E103, naming both places).
"""

from __future__ import annotations

import os
from pathlib import Path

from mfc.diagnostics import (E103, E121, E140, E141, Diagnostic, Note, Report, Site, Source,
                             SpecError)
from mfc.lang import ast, fragments, syntax
from mfc.lang.fragments import REPEAT, Definition
from mfc.ops import OPS

LIBRARIES = {"std": Path(__file__).with_name("std.mf")}  # `use std`


def library(module: ast.Module, filename: str, base_dir: Path,
            report: Report) -> dict[str, Definition]:
    """Fragment name → Definition, for the spec `module` (named `filename`, its paths
    relative to `base_dir`) and every file it uses; each definition checked."""
    loader = _Loader(report)
    loader.add(module, None)
    spec = (Path(base_dir) / Path(filename).name) if filename != "<string>" else None
    chain = [(_resolved(spec), None)] if spec is not None else []
    loader.follow(module, None, Path(base_dir), os.path.dirname(filename), chain)
    fragments.check(loader.library, report)
    return loader.library


class _Loader:
    def __init__(self, report: Report):
        self.report = report
        self.library: dict[str, Definition] = {}
        self.loaded: set[Path] = set()

    def add(self, module: ast.Module, source: Source | None, std: bool = False) -> None:
        for fragment in module.fragments:
            definition = Definition(fragment, source, std)
            name, span = fragment.name, definition.at(fragment.name_span)
            op = OPS.get(name)
            if (op is not None and op.user) or name == REPEAT:
                self.report(E103, f"'{name}' is {'an op' if op else 'a word'} of mfc; a "
                            "fragment needs a name of its own", span)
            elif name in self.library:
                first = self.library[name]
                self.report(E103, f"fragment '{name}' is defined twice", span,
                            notes=[Note(f"'{name}' first defined here",
                                        first.at(first.fragment.name_span))])
            else:
                self.library[name] = definition

    def follow(self, module: ast.Module, source: Source | None, directory: Path,
               shown: str, chain: list) -> None:
        """Read the files `module` uses; `directory` and `shown` are the folder its
        paths are relative to, as a path and as messages show it; `chain`, the files
        (and uses) that led here."""
        for use in module.uses:
            self.use(use, source, directory, shown, chain)

    def use(self, use: ast.Use, source: Source | None, directory: Path, shown: str,
            chain: list) -> None:
        span = use.span if source is None else use.span.at(Site(source))
        if use.kind == "word":
            path = LIBRARIES.get(use.target)
            if path is None:
                self.report(E140, f"no library named '{use.target}'", span,
                            help=f"mfc's libraries: {', '.join(LIBRARIES)}; a file is named "
                            f'in quotes: use "{use.target}.mf"')
                return
            name = str(path)
        else:
            path, name = directory / use.target, os.path.normpath(os.path.join(shown, use.target))
        resolved = _resolved(path)
        on_chain = [i for i, (p, _) in enumerate(chain) if p == resolved]
        if on_chain:
            self.cycle(chain[on_chain[0] + 1:], name, span)
            return
        if resolved in self.loaded:
            return  # used twice (two files use it): read once
        self.loaded.add(resolved)
        used = self.read(path, name, span)
        if used is None:
            return
        module, text = used
        file = Source(name, text)
        self.only_fragments(module, file)
        self.add(module, file, std=use.kind == "word")
        self.follow(module, file, path.parent, os.path.dirname(name), chain + [(resolved, span)])

    def read(self, path: Path, name: str, span) -> tuple[ast.Module, str] | None:
        """The parsed module and text of a used file; None when it cannot be (reported:
        at the use, or its syntax errors where they are, with a note at the use)."""
        try:
            text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
        except FileNotFoundError:
            self.report(E140, f"cannot use '{name}': no such file", span)
            return None
        except IsADirectoryError:
            self.report(E140, f"cannot use '{name}': it is a directory", span)
            return None
        except UnicodeDecodeError as err:
            self.report(E140, f"cannot use '{name}': not UTF-8 text (byte {err.start})", span)
            return None
        except OSError as err:
            self.report(E140, f"cannot use '{name}': {err.strerror or err}", span)
            return None
        try:
            return syntax.parse(text), text
        except SpecError as err:
            site = Site(Source(name, text))
            for d in err.diagnostics:
                self.report.add(Diagnostic(d.code, d.message, d.span.at(site) if d.span else span,
                                           d.help, (*d.notes, Note("used here", span))))
            return None

    def only_fragments(self, module: ast.Module, file: Source) -> None:
        site = Site(file)
        for statement in (*module.assigns, *module.trains, *module.returns):
            what = "a train block" if isinstance(statement, ast.TrainBlock) else \
                "a definition" if isinstance(statement, ast.Assign) else "a return"
            self.report(E141, f"a used file holds fragments (and uses): {what} here would "
                        "be left out", statement.span.at(site),
                        help="keep the network in the spec, its blocks in the used file")

    def cycle(self, after: list, name: str, span) -> None:
        """E121 at the use that closes a cycle; `after`, the files (and their uses) read
        since the file it names: the first of those uses opened the cycle."""
        notes = [Note(f"the cycle starts here, inside '{name}'", after[0][1])] if after else []
        self.report(E121, f"a cycle of uses: '{name}' is already being read", span,
                    notes=notes, help="a file cannot use itself, directly or through others")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop, say
        return path.absolute()
