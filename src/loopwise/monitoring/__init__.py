"""Monitoring: window by window, the inputs, outputs, live accuracy and service figures of
an endpoint (from its prediction log and feedback), overall and per slice, stored as time
series, with alert rules whose firing can trigger a retraining.

``config`` declares a monitor; ``engine`` evaluates windows into :class:`WindowResult`
figures; ``alerting`` turns figures into alerts, delivers them and runs their actions.
"""
