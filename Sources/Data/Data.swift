// Data module: contents land with their issue.
