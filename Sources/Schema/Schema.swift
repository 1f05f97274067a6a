// Schema module: contents land with their issue.
