"""The README's first command: the product end to end on one machine (``python -m demo``)."""
