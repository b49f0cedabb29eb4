"""API services; one package per service, one module per resource noun."""
