"""HTTP routes, one module per concern. Routes validate and translate; the work happens in
the registry, `service.digits` and `service.fuel_economy`."""
