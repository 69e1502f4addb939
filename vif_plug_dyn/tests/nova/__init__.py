"""Tests driving the library with nova's own code (``tox -e nova``)."""
