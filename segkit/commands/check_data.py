"""Scan a config's dataset and report every bad file at once; exit 1 when there is any.

    segkit check-data configs/examples/folder_binary.yaml DATA.ROOT mydata

Every image and mask of every split is fully decoded: missing, empty, unreadable files,
masks of the wrong size or with unexpected values (colour masks given as labels, 0/255 masks
declared 0/1, palette indices taken for colours, labels beyond MODEL.NUM_CLASSES) are listed
together, not one per run, each with its fix; classes that never occur in a split are noted,
and each split's class pixel frequencies are printed.
"""
from __future__ import annotations

import dataclasses

from .options import add_config, add_json_out, add_overrides, add_plugin, check_output_file, load_setup, write_json_out

HELP = "report every bad file of a config's dataset"


def add_arguments(parser) -> None:
    add_config(parser)
    add_overrides(parser)
    add_plugin(parser)
    add_json_out(parser)


def run(args) -> int:
    from ..data import check_data

    cfg = load_setup(args, training=False)
    check_output_file("--json-out", args.json_out, cfg.DATA.ROOT, inputs=[args.config])
    report = check_data(cfg)
    print(report.format())
    write_json_out(args.json_out, {"ok": report.ok, "counts": report.counts, "notes": report.notes,
                                   "errors": [dataclasses.asdict(p) for p in report.errors],
                                   "classes": report.classes, "frequencies": report.frequencies})
    return 0 if report.ok else 1
