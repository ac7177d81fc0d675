"""Other tools' records brought into loopwise: ``import_mlflow`` copies an MLflow tracking
store (its database, or a server through its REST API) -- experiments, runs, metrics,
artifacts, registered models, versions and aliases -- and a re-run copies only what is new.
"""
