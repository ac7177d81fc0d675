"""API tokens and roles, shared by the serving endpoints and the server: hashed at rest,
checked per request."""
