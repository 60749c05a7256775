"""The bad-input corpus: its files, its cases (cases.json) and the builder of its binary
files (make_binary.py), which tests import to craft zips of their own."""
