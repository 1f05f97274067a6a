// Metrics module: contents land with their issue.
