// Synthetic module: contents land with their issue.
