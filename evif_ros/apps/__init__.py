"""The applications: the `evif` command line (one module per subcommand group), `evif rig`
and `evif demo`."""
