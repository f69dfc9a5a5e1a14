"""Subcommands of the `segnas` CLI; each module has `main(argv) -> int`."""
