"""HTTP routes, one module per concern. Routes validate and translate, then make one call into a
use case (`service.usecases`), the registry or a store; the work happens there."""
