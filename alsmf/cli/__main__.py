"""``python -m alsmf.cli``: the ``alsmf`` command."""

from alsmf.cli import main

main()
