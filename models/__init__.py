"""Built-in models, one module each; every module exposes `factory() -> ModelBundle`."""
