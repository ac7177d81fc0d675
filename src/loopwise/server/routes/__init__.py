"""The REST API's routes, one module per area (tracking, registry, data, predictions,
monitoring), each a FastAPI ``router`` over the services, on the app's Store."""
