"""Serving the team owns: the prediction API, its protocols, micro-batching and the prediction log."""
