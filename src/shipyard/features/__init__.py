"""The feature store: entities, feature views, training sets and the online store."""
