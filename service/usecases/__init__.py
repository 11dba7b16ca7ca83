"""What the prediction routes do once a request is read: one module per route module
(`digit`, `mpg`, and `tensors` for the two tensor protocols). A use case calls the layers below
(admission and `service.vision`, the registry and its models) and never a route or the HTTP
edge."""
