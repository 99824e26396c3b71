"""MLflow: where runs are tracked (``paths``) and the model registry with its gate
(``registry``). Import the modules explicitly; nothing here loads mlflow."""
