"""Serving the team owns: the prediction API, its protocols, batching and the prediction log."""
