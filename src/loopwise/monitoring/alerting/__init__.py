"""Alerting: rules applied window by window, alert states that survive restarts,
delivery of notifications and actions, and the gate that reads them."""
