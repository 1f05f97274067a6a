// Tensors module: contents land with their issue.
