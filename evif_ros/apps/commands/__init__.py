"""One module per group of `evif` subcommands, each with a ``register(sub)``."""
