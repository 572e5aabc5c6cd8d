"""The subcommands of ``rfcheck`` (see :mod:`rfcheck.cli`): each module has ``add_arguments(parser)``
and ``run(args) -> int``."""
