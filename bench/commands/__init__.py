"""The commands of `python -m bench`: each module here is one, named as the module.

A command module holds a docstring (its first line is the summary `python -m bench --help`
shows, the whole of it `--help`'s description), `add_arguments(parser)` (its own options, and
the shared ones it asks for from `bench.options`) and `run(args) -> list[Section]` (measures,
writes raw files to `args.run_dir`, returns the sections of bench/RESULTS.md it produced). The
CLI adds `--out` and `--write-results`, stamps, prints and publishes the sections. Nothing heavy
is imported at module level: `--help` imports every command. Support code goes beside this
package, in `bench/`, never here.
"""
