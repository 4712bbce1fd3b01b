"""One file per schema revision, named NNNN_what.py."""
