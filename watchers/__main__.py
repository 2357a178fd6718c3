"""``python -m watchers`` runs the ravens command."""

from watchers.cli import main

main()
