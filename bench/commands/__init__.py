"""The commands of `python -m bench`: one module each (see bench/__main__.py)."""
