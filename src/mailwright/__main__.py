"""`python -m mailwright` is the `mailwright` command (handy without the console script)."""

from mailwright.cli.app import main

main()
