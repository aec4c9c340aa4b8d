"""The `news` command-line tool (issue 20): `news --help`; the commands live in `news_cli.main`."""
