"""The monitor engine: the prediction log cut into windows, and every window's figures
(performance, drift, profiles) computed per model version and slice."""
