"""One module per ``bindcore`` sub-command; each defines ``register(cli)`` and is found automatically."""
