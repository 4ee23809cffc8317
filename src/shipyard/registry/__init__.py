"""The model registry: versions, aliases with an audit log, model cards, export."""
