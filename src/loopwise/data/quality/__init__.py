"""Training-data quality: class balance, outliers, correlated and leaking features;
the checks, their plain-data types and the HTML page."""
