// Checkpoint module: contents land with their issue.
