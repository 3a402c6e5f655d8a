"""``python -m neurectomy`` runs the command line."""

from neurectomy.cli import main

if __name__ == "__main__":  # worker processes load this module as __mp_main__: they must not run the CLI
    main()
