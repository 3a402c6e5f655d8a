"""``python -m neurectomy`` runs the command line."""

from neurectomy.cli import main

main()
