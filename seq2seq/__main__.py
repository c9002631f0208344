"""``python -m seq2seq`` (also what ``torchrun -m seq2seq`` runs)."""

import sys

from seq2seq.cli import main

sys.exit(main())
