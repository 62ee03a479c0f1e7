"""models stage: the registry that turns a model name or `file.py:factory` into a `ModelBundle`."""
