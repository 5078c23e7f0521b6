"""`mfc eval SPEC --load MODEL.npz --data FILE`: a trained model's loss on data with
targets, and the metrics of its predictions (sklearn.metrics): a table, or JSON. A loss
that reads no targets (an autoencoder's) needs the features alone; targets the data has
are then not read."""

from __future__ import annotations

import json

from mfc.cli.common import EXIT_OK, CliError, model_data, trained_model


def add_parser(commands) -> None:
    evaluate = commands.add_parser("eval", help="evaluate a trained model on data")
    evaluate.add_argument("file", metavar="SPEC")
    evaluate.add_argument("--load", metavar="MODEL.npz", required=True,
                          help="the model file (mfc run --save) to evaluate")
    evaluate.add_argument("--data", metavar="FILE", required=True,
                          help="a .csv file with the targets (- reads CSV from stdin), an "
                          ".npz file with X and y, or a bundled dataset name")
    evaluate.add_argument("--format", choices=("text", "json"), default="text",
                          help="text (a table, the default) or json")
    evaluate.set_defaults(handler=run)


def run(args) -> int:
    model = trained_model(args.file, args.load)
    data = model_data(model, args.data, args.load, targets=model.reads_targets)
    try:
        evaluation = model.evaluate(data.X, data.y)
    except ValueError as err:
        raise CliError(str(err)) from None
    if args.format == "json":
        print(json.dumps(evaluation.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(evaluation.table())
    return EXIT_OK
