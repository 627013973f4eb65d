"""The `shuzhi` command line: one command group per package, `--json` wherever data prints."""
