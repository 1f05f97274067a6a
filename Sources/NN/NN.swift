// NN module: contents land with their issue.
