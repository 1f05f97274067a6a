// Model module: contents land with their issue.
