// Training module: contents land with their issue.
