"""The loopwise server: one REST API under ``/api/v1`` over the same services as the Python
API (each request works on the server's Store), with tokens, roles and JSON errors.
"""
