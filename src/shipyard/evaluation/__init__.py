"""Business objectives as code: metrics, cost-optimal thresholds, fairness, gates."""
