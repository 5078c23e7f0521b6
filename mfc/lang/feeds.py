"""Stage 4a: the data the train block names, described without loading it, and which
Inputs it feeds with what width.

The width of the data's features resolves `_` dims at check time: a bundled dataset's
comes from a table, a CSV's from its header, an NPZ's from its array headers. A file
that is not there (yet) is a warning, and its widths are left to the run.
"""

from __future__ import annotations

from pathlib import Path

from mfc import data
from mfc.diagnostics import E404, E405, W004, DataError, Report, did_you_mean
from mfc.ir import Node
from mfc.lang.shapes import DATA, Dims, Feed
from mfc.settings import TrainSettings, report_setting, setting_span


def describe(settings: TrainSettings, base_dir: Path, report: Report) -> data.DataInfo | None:
    """The data's DataInfo (None when there is no data or it cannot be described), with
    any problem reported: E404 at the setting at fault, W004 for a missing file."""
    if not settings.data:
        return None
    try:
        info = data.describe(settings.data, base_dir)
    except DataError as err:
        report_setting(report, settings, "data", E404, str(err))
        return None
    if info is None:
        report(W004, f"data file '{settings.data}' not found, so shapes that depend on it "
               "are not checked", setting_span(settings, "data"))
        return None
    if settings.target_column is not None:
        try:
            data.describe(settings.data, base_dir, settings.target_column)
        except DataError as err:
            report_setting(report, settings, "target_column", E404, str(err))
    return info


def feeds(nodes: dict[str, Node], settings: TrainSettings, info, dims: Dims,
          report: Report) -> dict[str, Feed]:
    """Input name → what the data feeds it (its role, and the features' width: known when
    the data could be described, else a symbol the run fills)."""
    if settings.data is None:
        return {}
    width = info.features if info else dims.new(DATA)
    found = {}
    roles = [("features", settings.features), ("targets", settings.targets)]
    if settings.features == settings.targets:
        key = "targets" if settings.origin("targets") != "default" else "features"
        report_setting(report, settings, key, E405, f"features and targets both go to "
                       f"'{settings.features}'",
                       help="the data's features and its targets need an Input each")
        roles.pop()
    for role, name in roles:
        if _can_feed(nodes, settings, role, name, report) and name in nodes:
            found[name] = Feed(role, width, setting_span(settings, "data"))
    return found


def _can_feed(nodes, settings, role: str, name: str, report: Report) -> bool:
    help = f"name the Input with {role} = NAME in the train block"
    if name not in nodes:
        if role == "targets" and settings.origin(role) == "default":
            return True  # no targets: the data's y goes unused (an autoencoder, say)
        report_setting(report, settings, role, E405, f"the data's {role} go to '{name}', "
                       "but there is no such node",
                       help=did_you_mean(name, [n for n, node in nodes.items()  # Inputs
                                                if node.kind == "data"]) or help)
        return False
    node = nodes[name]
    if node.op is not None and node.kind != "data":
        report_setting(report, settings, role, E405, f"the data's {role} go to '{name}', "
                       f"which is a {node.op.name}, not an Input", help=help)
        return False
    return True
