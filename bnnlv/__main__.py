"""``python -m bnnlv COMMAND …``: the ``bnnlv`` command."""

from bnnlv.runs.cli import main

main()
